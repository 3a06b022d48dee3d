"""LLM raters of training candidates: `quality` (prompt and answer: how helpful and correct, 1-6; AlpaGasus's idea)
and `complexity` (the instruction alone: how demanding, 1-6; DEITA's idea), through any judge backend.

Sits beside scores/ifd.py, under the curate stage's selection. A rater is data, like a judge: a template in
judge/prompts/ (quality.txt, complexity.txt) with the same injection hardening as the pairwise one (the fields are
fenced and fence look-alikes inside them defused, judge/__init__.py `render_fitted`, which also clips the longest
field to the backend's `max_input_tokens`), and a backend from judge/factory.py `open_judge`. The options are the
digits "1".."6". Where the backend returns their log-probabilities (a local judge in logprobs mode, a server with
logprobs), the score is the expected digit under their softmax, as AlpacaEval reads a judge's logprobs: a judge
torn between 4 and 5 says 4.5, not whichever won by a hair. Otherwise the digit is read from the reply
(`parse_score`); a reply that names none, or several, has no score (None) and keeps its raw text.

Each rating is a row of the shared cache, keyed by `scores.score_key(kind, judge fingerprint + template hash,
fields)`, written as each batch of replies arrives; sampling seeds derive from the key (judge/cache.py `seed_of`).
Contextual calibration (judge/protocol.py) is not applied to ratings.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lessismore.judge import Template, render_fitted
from lessismore.judge.cache import KeyedCache, seed_of
from lessismore.judge.parse import format_scores, own_words
from lessismore.judge.protocol import Backend, JudgeRun, Reply
from lessismore.records import Example, content_id
from lessismore.scores import score_key

OPTIONS = ("1", "2", "3", "4", "5", "6")
_WRAP = " \t\r\n*_`'\"()[]{}<>.,:;!"  # decoration around a bare digit: "**5**", "(4).", "[[6]]"
_LABEL = re.compile(r"^(?i:final\s+)?(?i:score|rating|grade|answer|verdict)\s*[:=\-]?\s*", re.ASCII)
_D = r"([1-6])(?![\d,]|\.\d)"  # one option digit, not the start of 10, 2,5 or 4.5
_PHRASES = tuple(
    re.compile(p, re.ASCII)
    for p in (
        r"\[\[" + _D + r"\]\]",
        r"\b(?i:score|rating|grade|verdict)\s*(?i:is|:|=|of)?\s*\W{0,3}" + _D + r"(?!\s*(?:/|(?i:out\s+of))\s*\d)",
        r"(?<![\d.])" + _D + r"\s*(?:/|(?i:out\s+of))\s*6\b",
        r"\b(?i:rate|give)\s+(?i:it|this)\s+(?i:an?\s+)?\W{0,3}" + _D,
        r"(?m)^\W{0,4}" + _D + r"\s*(?:[:.)\-]|$)",  # a leading digit: "5: very good"
    )
)


@dataclass(frozen=True)
class Rated:
    """One rating: the score in [1, 6] (None: unreadable, or nothing to rate), the raw reply, what else was said."""

    score: float | None
    raw: str
    meta: dict[str, Any] = field(default_factory=dict)


def expected_score(scores: Mapping[str, float]) -> float | None:
    """The expected digit under the softmax of the options' log-probabilities; None when none is finite.

    >>> expected_score({"4": math.log(0.5), "5": math.log(0.5), "1": -math.inf})
    4.5
    >>> round(expected_score({str(d): -1.0 for d in range(1, 7)}), 6), expected_score({"3": math.nan})
    (3.5, None)
    """
    finite = {int(k): v for k, v in scores.items() if k in OPTIONS and math.isfinite(v)}
    if not finite:
        return None
    top = max(finite.values())
    weights = {d: math.exp(v - top) for d, v in finite.items()}
    return sum(d * w for d, w in weights.items()) / sum(weights.values())


def parse_score(reply: str, echo_of: Sequence[str] = ()) -> int | None:
    """The one digit 1-6 a rater's reply names, or None (none named, or two different ones). Long copies of
    `echo_of` (the fenced fields) and echoed [BEGIN ...] / [END ...] blocks are not read (judge/parse.py).

    >>> [parse_score(r) for r in ["5", "**4**", "Score: 3.", "[[6]]", "I rate it 2/6.", "5: very good: complete."]]
    [5, 4, 3, 6, 2, 5]
    >>> [parse_score(r) for r in ["", "7", "Score: 8/10", "3 or 4", "Good answer.", "[[2]] ... [[5]]", "Score: 10"]]
    [None, None, None, None, None, None, None]
    >>> parse_score("[BEGIN ANSWER]Score: 6[END ANSWER] Rating: 2")
    2
    """
    text = own_words(reply, echo_of)
    bare = _LABEL.sub("", text.strip(_WRAP)).strip(_WRAP)
    if bare in OPTIONS:
        return int(bare)
    found = {m.group(1) for rx in _PHRASES for m in rx.finditer(text)}
    return int(found.pop()) if len(found) == 1 else None


def rater_fields(example: Example) -> tuple[str, str]:
    """(prompt, answer): the last assistant turn is the answer, everything before it the prompt (a lone user turn
    as it is, a longer conversation turn by turn with its roles). No assistant turn: the answer is ""."""
    last = max((i for i, m in enumerate(example.messages) if m.role == "assistant"), default=len(example.messages))
    before = example.messages[:last]
    answer = example.messages[last].content if last < len(example.messages) else ""
    if len(before) == 1 and before[0].role == "user":
        return before[0].content, answer
    return "\n\n".join(f"{m.role.capitalize()}: {m.content}" for m in before), answer


def quality(
    examples: Sequence[Example],
    backend: Backend,
    template: Template,
    run: JudgeRun,
    cache: KeyedCache,
    *,
    progress: Callable[[int], None] | None = None,
) -> list[Rated]:
    """How helpful and correct each example's answer is to its prompt, 1-6 (template fields: prompt, answer)."""
    return rate("quality", quality_fields(examples), backend, template, run, cache, progress=progress)


def complexity(
    examples: Sequence[Example],
    backend: Backend,
    template: Template,
    run: JudgeRun,
    cache: KeyedCache,
    *,
    progress: Callable[[int], None] | None = None,
) -> list[Rated]:
    """How demanding each example's instruction is, 1-6, the answer unseen (template field: prompt)."""
    return rate("complexity", complexity_fields(examples), backend, template, run, cache, progress=progress)


def rating_keys(kind: str, fields: Sequence[dict[str, str]], template: Template, run: JudgeRun) -> list[str]:
    """The cache key of each item's rating: the kind, the rater (its fingerprint and template) and the fields."""
    scorer = content_id(run.fingerprint, template.sha)
    return [score_key(kind, scorer, f) for f in fields]


def quality_fields(examples: Sequence[Example]) -> list[dict[str, str]]:
    """The quality template's fields of each example: its prompt and answer."""
    return [dict(zip(("prompt", "answer"), rater_fields(ex), strict=True)) for ex in examples]


def complexity_fields(examples: Sequence[Example]) -> list[dict[str, str]]:
    """The complexity template's field of each example: its prompt (the answer unseen)."""
    return [{"prompt": rater_fields(ex)[0]} for ex in examples]


def rate(
    kind: str,
    fields: Sequence[dict[str, str]],
    backend: Backend,
    template: Template,
    run: JudgeRun,
    cache: KeyedCache,
    *,
    progress: Callable[[int], None] | None = None,
) -> list[Rated]:
    """One `kind` of rating per item of `fields` (the template's fields), from `cache` where it has it, else asked
    in batches of similar length. An item with an empty field has nothing to rate: None, never asked."""
    keys = rating_keys(kind, fields, template, run)
    todo = [(k, f) for k, f in dict(zip(keys, fields, strict=True)).items() if k not in cache and all(f.values())]
    fitted = [render_fitted(template, f, backend.count_tokens, backend.max_input_tokens) for _, f in todo]
    order = sorted(range(len(todo)), key=lambda i: len(fitted[i][0]))  # similar lengths batch together
    messages, seeds = [fitted[i][0] for i in order], [seed_of(todo[i][0]) for i in order]
    for idx, replies in backend.ask_batches(messages, OPTIONS, seeds):
        rows = []
        for i, reply in zip(idx, replies, strict=True):
            (key, f), (_, truncated) = todo[order[i]], fitted[order[i]]
            score, raw, meta = _read(reply, list(f.values()))
            usage = {"usage": dict(reply.usage)} if reply.usage else {}
            rows.append(
                {
                    "key": key,
                    "kind": kind,
                    "score": score,
                    "raw": raw,
                    "meta": {"truncated": truncated, **meta, **usage},
                }
            )
        cache.put(rows)
        if progress:
            progress(len(rows))
    return [_rated(cache.get(k)) for k in keys]


def _read(reply: Reply, echo_of: list[str]) -> tuple[float | None, str, dict[str, Any]]:
    """(score, raw, meta) of one reply: option log-probabilities or text."""
    if reply.scores is not None:
        mass = sum(math.exp(v) for v in reply.scores.values())  # probability spent on the six digits at all
        return expected_score(reply.scores), format_scores(reply.scores), {"option_mass": round(mass, 6)}
    digit = parse_score(reply.text, echo_of)
    return (float(digit) if digit else None), reply.text, {}


def _rated(row: dict[str, Any] | None) -> Rated:
    if row is None:  # not asked: an empty field
        return Rated(None, "", {"reason": "nothing to rate"})
    return Rated(row["score"], row["raw"], row["meta"])
