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


def which_to_read(baselines: dict[str, Any], strong_weight: float | None = None) -> str:
    """Which of the two win rates to read, and why: the both-orders shares (LIMA's rule) or the soft win rate.
    `strong_weight`: set when the judge answers on five levels (its metrics block says what a strong verdict
    weighed).

    >>> which_to_read({"base": {"tie": 1.0, "soft": {"n": 36}}}).startswith("Read the soft win rate")
    True
    >>> which_to_read({"base": {"tie": 0.2, "soft": {"n": 36}}}).startswith("Both")
    True
    >>> which_to_read({"base": {"tie": 0.2, "soft": {"n": 36}}}, 3.0).endswith("counts 3 times, as Arena-Hard's.")
    True
    """
    blocks = [b for b in baselines.values() if (b.get("soft") or {}).get("n")]
    if not blocks:
        return ""
    five = (
        f" This judge answers on five levels: in the soft win rate a strong verdict ([[A>>B]]) counts "
        f"{strong_weight:g} times, as Arena-Hard's."
        if strong_weight
        else ""
    )
    return _which(blocks) + five


def _which(blocks: list[dict[str, Any]]) -> str:
    if max(b.get("tie") or 0.0 for b in blocks) >= 0.5:
        return (
            "Read the soft win rate: under the both-orders rule most pairs are ties (the judge's two orders rarely "
            "agree on a side), which throws away how far it leans; the soft rate averages the judge's probability "
            "for the candidate over both orders, a tie counting half."
        )
    return (
        "Both numbers say the same thing when the judge is decisive: the shares count pairs both orders agree on "
        "(LIMA's rule), the soft win rate averages the judge's probability for the candidate over both orders."
    )


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
