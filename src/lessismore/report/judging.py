"""How far to trust the judge, for the report: a plain-words verdict and the reliability table's rows.

Sits under report/build.py and reads the "reliability" block of metrics/judge.json (judge/stats.py writes it).
"""

from __future__ import annotations

from typing import Any

from lessismore.report.figures import pct


def trust_sentence(rel: dict[str, Any]) -> str:
    """How far to trust the judge, in plain words, from its measured position consistency.

    Thresholds are this project's rule of thumb: a judge answering at random agrees with itself on about a third of
    swapped pairs, so below one half its verdicts mostly reflect where an answer is shown.
    >>> trust_sentence({"position_consistency": 0.9, "valid_pairs": 10}).startswith("The judge agreed")
    True
    """
    pc, n = rel.get("position_consistency"), rel.get("valid_pairs", 0)
    if pc is None or not n:
        return "The judge produced no readable pair of verdicts, so the results above say nothing about the models."
    words = [f"The judge agreed with itself when the order of the two answers was swapped on {pc:.0%} of {n} pairs"]
    words[0] += " (a judge answering at random would agree on about a third)."
    if (first := rel.get("first_position_preference")) is not None:
        words.append(
            f"It picked the answer shown first in {first:.0%} of its decisive verdicts (unbiased: about 50%)."
        )
    if (inv := rel.get("invalid_rate")) is not None and inv > 0:
        words.append(f"{inv:.0%} of its verdicts could not be read.")
    if (mass := rel.get("option_mass")) is not None:
        words.append(f"On average it gave the allowed answer letters {mass:.0%} of its next-token probability.")
    if pc < 0.5:
        words.append("Treat the win rates above as noise: this judge mostly reacts to answer order, not content.")
    elif pc < 0.75:
        words.append("Treat the win rates above as a weak signal, and read the intervals, not the point estimates.")
    else:
        words.append("Its verdicts are fairly stable under order swaps; differences inside the intervals are noise.")
    return " ".join(words)


def reliability_rows(rel: dict[str, Any]) -> list[dict[str, str]]:
    """The reliability table: (measure, value, what it is, what a trustworthy judge shows)."""
    rows = [
        (
            "position consistency",
            "position_consistency",
            "share of pairs whose two orders agree",
            "high; random ≈ 33%",
        ),
        (
            "first-position preference",
            "first_position_preference",
            "decisive verdicts for the answer shown first",
            "≈ 50%",
        ),
        ("invalid rate", "invalid_rate", "verdicts that could not be read", "0%"),
        ("length bias", "length_bias", "decisive pairs won by the longer answer", "≈ 50% unless longer is better"),
        ("option mass", "option_mass", "probability on the allowed letters (logprobs mode)", "near 100%"),
        ("inconsistent pairs", "inconsistent_pairs", "pairs whose two orders disagree (counted as ties)", "few"),
    ]
    return [{"name": a, "value": _value(rel.get(k)), "meaning": m, "ideal": i} for a, k, m, i in rows]


def _value(v: Any) -> str:
    """A share as a percentage, a count as a number (n/a when missing).

    >>> _value(0.25), _value(3), _value(None)
    ('25%', '3', 'n/a')
    """
    return str(v) if isinstance(v, int) and not isinstance(v, bool) else pct(v)
