"""Pure parsers: a judge's reply (text, or option log-probabilities) -> a verdict or a grade.

Used by judge/protocol.py for every backend. A parser never guesses: a reply that names no option, or names two
different ones, is "invalid", and the raw reply is kept on the record so anyone can audit the call.
Option letters are upper-case only, so the article "a" is never read as a vote for answer A.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from lessismore.records import Grade, Verdict

PAIRWISE_OPTIONS: dict[str, Verdict] = {"A": "a", "B": "b", "C": "tie"}
GRADE_OPTIONS: dict[str, Grade] = {"E": "excellent", "P": "pass", "F": "fail"}

_WRAP = " \t\r\n*_`'\"()[]{}<>.,:;!"  # decoration around a bare answer: "**B**", "(C).", "[[A]]"
_LABEL = re.compile(r"^(?i:final answer|answer|verdict|option|choice|grade|rating)\s*[:=\-]?\s*")
_AFTER = r"(?=\s*(?:[.,;:!)\]*\-]|$|\s(?i:is|because|since|as)\b))"  # the letter ends the clause
_LEADING = re.compile(r"^\W{0,4}([A-Z])\s*(?:[:.()\]*\-]|$)", re.MULTILINE)
_PAIRWISE_PHRASES = (
    re.compile(
        r"\b(?i:answer|option|response|assistant)\s*\(?([AB])\)?\s+(?i:is)\s+"
        r"(?i:significantly\s+|much\s+|clearly\s+|far\s+|slightly\s+)?(?i:better)\b"
    ),
    re.compile(r"\b(?i:verdict|choice|answer|option)\s*(?i:is|:|=)\s*\W{0,3}([ABC])" + _AFTER),
    re.compile(r"\b(?i:choose|pick|prefer|select)\s+(?i:answer\s+|option\s+)?\W{0,3}([ABC])" + _AFTER),
    re.compile(r"\[\[([ABC])\]\]"),
)
_TIE_PHRASES = re.compile(r"(?i:\bneither\b[^.\n]{0,40}\bbetter\b|\bit'?s a tie\b|\bequally good\b)")
_GRADE_PHRASES = (
    re.compile(r"\b(?i:grade|rating|verdict)\s*(?i:is|:|=)?\s*\W{0,3}([EPF]|(?i:excellent|pass|fail))" + _AFTER),
    re.compile(r"\[\[([EPF]|(?i:excellent|pass|fail))\]\]"),
)


def _bare(reply: str) -> str:
    return _LABEL.sub("", reply.strip(_WRAP)).strip(_WRAP)


def parse_pairwise(reply: str) -> Verdict:
    """Read a pairwise reply: "a" (answer A better), "b", "tie" (neither significantly better) or "invalid".

    >>> [parse_pairwise(r) for r in ["B", "**A**", "(C).", "Verdict: [[B]]", "C: neither is significantly better."]]
    ['b', 'a', 'tie', 'b', 'tie']
    >>> [parse_pairwise(r) for r in ["A or B?", "[[A]] ... [[B]]", "A good question.", "", "Answer A is not better."]]
    ['invalid', 'invalid', 'invalid', 'invalid', 'invalid']
    >>> parse_pairwise("Answer B is significantly better, because it is complete.")
    'b'
    """
    bare = _bare(reply)
    if bare in PAIRWISE_OPTIONS:
        return PAIRWISE_OPTIONS[bare]
    if bare.lower() in ("neither", "tie"):
        return "tie"
    found = {PAIRWISE_OPTIONS[m] for m in _LEADING.findall(reply.strip()[:80]) if m in PAIRWISE_OPTIONS}
    found |= {PAIRWISE_OPTIONS[m] for rx in _PAIRWISE_PHRASES for m in rx.findall(reply)}
    if _TIE_PHRASES.search(reply):
        found.add("tie")
    return found.pop() if len(found) == 1 else "invalid"


def _grade_of(token: str) -> Grade | None:
    return GRADE_OPTIONS.get(token) or {v: v for v in GRADE_OPTIONS.values()}.get(token.lower())


def parse_grade(reply: str) -> Grade:
    """Read an absolute grade (LIMA Figure 3): "excellent", "pass", "fail" or "invalid".

    >>> [parse_grade(r) for r in ["E", "pass", "F (fail): it ignores the question", "Grade: **P**", "Excellent!"]]
    ['excellent', 'pass', 'fail', 'pass', 'excellent']
    >>> [parse_grade(r) for r in ["E or F", "It might pass or fail.", "Good", "[[E]] [[F]]"]]
    ['invalid', 'invalid', 'invalid', 'invalid']
    """
    bare = _bare(reply)
    if (grade := _grade_of(bare)) is not None:
        return grade
    found = {GRADE_OPTIONS[m] for m in _LEADING.findall(reply.strip()[:80]) if m in GRADE_OPTIONS}
    found |= {g for rx in _GRADE_PHRASES for m in rx.findall(reply) if (g := _grade_of(m)) is not None}
    return found.pop() if len(found) == 1 else "invalid"


def choose(scores: Mapping[str, float], options: Mapping[str, str]) -> str:
    """The option with the single highest score (log-probability); a tie for first or a NaN is "invalid".

    >>> choose({"A": -0.5, "B": -2.0, "C": -1.0}, PAIRWISE_OPTIONS)
    'a'
    >>> choose({"A": -1.0, "B": -1.0, "C": -3.0}, PAIRWISE_OPTIONS), choose({"A": float("nan")}, PAIRWISE_OPTIONS)
    ('invalid', 'invalid')
    """
    values = [(float(scores.get(letter, float("-inf"))), letter) for letter in options]
    if not values or any(math.isnan(v) for v, _ in values):
        return "invalid"
    values.sort(reverse=True)
    if values[0][0] == float("-inf") or (len(values) > 1 and values[0][0] == values[1][0]):
        return "invalid"
    return options[values[0][1]]


def format_scores(scores: Mapping[str, float]) -> str:
    """The raw text kept on a record in logprobs mode (natural-log probabilities, 4 decimals).

    >>> format_scores({"A": -0.12345, "B": -2.0})
    'A=-0.1235 B=-2.0000'
    """
    return " ".join(f"{k}={v:.4f}" for k, v in scores.items())
