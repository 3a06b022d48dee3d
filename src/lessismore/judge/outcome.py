"""Aggregation: two single verdicts (one per order) -> one pair outcome, from the candidate's point of view.

Sits between judge/protocol.py (which produces Judgments, two per pair) and judge/stats.py. A pair is a win only
when both orders prefer the candidate, a loss when both prefer the baseline, a tie (LIMA's "neither is
significantly better") for any other readable combination, including two orders that disagree, and "invalid" if
either order could not be read or is missing (LIMA's both-orders rule).

Each pair also gets a soft preference in [0, 1]: the candidate's probability of being better, a tie counting
half (AlpacaEval's preference, 1 = candidate), averaged over the two orders (balanced position calibration). A
logprobs judge gives it from the option letters' probabilities (calibrated ones where the judge calibrates), so
a judge whose two orders never agree on a side, every pair a tie under the both-orders rule, still says which way
it leans; a judge that replies in text gives 1, 0.5 or 0 an order.

A 5-level judge (Arena-Hard's labels, parse.parse_five) says how much better: an order whose label is strong
("A>>B", "B>>A") weighs `strong_weight` (params judge.strong_weight; Arena-Hard counts it 3 times), any other
weighs 1. A pair's preference is its two orders' weighted mean and its `weight` their mean weight, so the soft win
rate (stats.soft_win_rate, weighted by pair) is Arena-Hard's: every order a game, a strong verdict counted
`strong_weight` times. A 3-level judge's pairs all weigh 1: nothing changes for them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from lessismore.judge.parse import FIVE_LEVELS, read_scores
from lessismore.records import Judgment

Outcome = Literal["win", "tie", "loss", "invalid"]
OUTCOMES: tuple[str, ...] = ("win", "tie", "loss", "invalid")


def candidate_view(order: str, verdict: str) -> int | None:
    """+1 the candidate was preferred, -1 the baseline was, 0 neither, None unreadable.

    >>> [candidate_view(o, v) for o, v in [("ab", "a"), ("ba", "a"), ("ba", "tie"), ("ab", "invalid")]]
    [1, -1, 0, None]
    """
    if verdict == "tie":
        return 0
    if verdict not in ("a", "b"):
        return None
    shown_as = "a" if order == "ab" else "b"
    return 1 if verdict == shown_as else -1


def pair_outcome(verdict_ab: str, verdict_ba: str) -> Outcome:
    """Both orders favour the candidate: win; both the baseline: loss; any readable rest: tie; else invalid.

    >>> pair_outcome("a", "b"), pair_outcome("b", "a"), pair_outcome("a", "a"), pair_outcome("tie", "b")
    ('win', 'loss', 'tie', 'tie')
    """
    views = (candidate_view("ab", verdict_ab), candidate_view("ba", verdict_ba))
    if None in views:
        return "invalid"
    return "win" if views == (1, 1) else "loss" if views == (-1, -1) else "tie"


@dataclass(frozen=True)
class PairOutcome:
    prompt_id: str
    baseline: str
    outcome: Outcome
    verdict_ab: str  # the single verdict with the candidate shown first ("missing" if that order was never judged)
    verdict_ba: str
    candidate_chars: int = 0  # answer lengths in characters, for the length-bias check (0: unknown)
    baseline_chars: int = 0
    ids: tuple[str, ...] = field(default=(), compare=False)  # the Judgment ids behind this outcome
    preference: float | None = None  # the soft preference for the candidate, both orders averaged (None: unreadable)
    candidate_id: str = ""  # the two answers' Response ids
    baseline_id: str = ""
    weight: float = 1.0  # the two orders' mean weight: above 1 where a 5-level judge's verdict was strong


def soft_view(judgment: Judgment) -> float | None:
    """The candidate's preference in [0, 1] from one judgment: P(candidate's letter) + P(tie) / 2 under the softmax
    of the letters' log-probabilities (the calibrated ones if any), or 1 / 0.5 / 0 from a text verdict.

    >>> j = Judgment("p", "j", "t", "ba", "rb", "rc", "base", "ft", "b", raw="A=-2.0000 B=-0.5000 C=-1.0000")
    >>> round(soft_view(j), 4), soft_view(Judgment("p", "j", "t", "ab", "rc", "rb", "ft", "base", "tie", raw="C"))
    (0.7123, 0.5)
    """
    scores = read_scores(judgment.meta.get("calibrated") or judgment.raw) if judgment.raw else None
    if scores is None or not {"A", "B", "C"} <= scores.keys():
        view = candidate_view(judgment.order, judgment.verdict)
        return None if view is None else (view + 1) / 2
    top = max(scores[k] for k in "ABC")
    if not math.isfinite(top):
        return None
    p = {k: math.exp(scores[k] - top) for k in "ABC"}
    total = sum(p.values())
    mine = "A" if judgment.order == "ab" else "B"
    return (p[mine] + p["C"] / 2) / total


def order_weight(judgment: Judgment, strong_weight: float) -> float:
    """How many games one order counts for: `strong_weight` for a strong 5-level label, else 1.

    >>> j = Judgment("p", "j", "t", "ab", "rc", "rb", "ft", "base", "a", raw="[[A>>B]]", meta={"level": "A>>B"})
    >>> order_weight(j, 3.0), order_weight(Judgment("p", "j", "t", "ab", "rc", "rb", "ft", "base", "a"), 3.0)
    (3.0, 1.0)
    """
    strong = FIVE_LEVELS.get(judgment.meta.get("level", ""), ("", False))[1]
    return float(strong_weight) if strong else 1.0


def pair_outcomes(
    judgments: Iterable[Judgment],
    candidate: str,
    lengths: Mapping[str, int] | None = None,
    strong_weight: float = 1.0,
) -> list[PairOutcome]:
    """Group single Judgments into pairs (prompt, baseline); a pair missing an order is "invalid" but still counted.
    `strong_weight`: what a strong 5-level verdict weighs (module doc); 3-level judgments always weigh 1."""
    lengths = lengths or {}
    groups: dict[tuple[str, str], dict[str, Judgment]] = {}
    for j in judgments:
        baseline = j.model_b if j.order == "ab" else j.model_a
        if candidate not in (j.model_a, j.model_b):
            raise ValueError(f"judgment {j.id} compares {j.model_a} and {j.model_b}, not candidate {candidate!r}")
        groups.setdefault((j.prompt_id, baseline), {})[j.order] = j
    out = []
    for (prompt_id, baseline), by_order in sorted(groups.items()):
        ab, ba = by_order.get("ab"), by_order.get("ba")
        v_ab, v_ba = (ab.verdict if ab else "missing"), (ba.verdict if ba else "missing")
        any_j = ab or ba
        cand_id = any_j.response_a if any_j.order == "ab" else any_j.response_b
        base_id = any_j.response_b if any_j.order == "ab" else any_j.response_a
        preference, weight = _mean_view(ab, ba, strong_weight)
        out.append(
            PairOutcome(
                prompt_id,
                baseline,
                pair_outcome(v_ab, v_ba),
                v_ab,
                v_ba,
                lengths.get(cand_id, 0),
                lengths.get(base_id, 0),
                tuple(j.id for j in by_order.values()),
                preference,
                cand_id,
                base_id,
                weight,
            )
        )
    return out


def _mean_view(ab: Judgment | None, ba: Judgment | None, strong_weight: float) -> tuple[float | None, float]:
    """(the two orders' weighted mean preference, their mean weight); an unreadable order: (None, 1)."""
    views = [soft_view(j) if j else None for j in (ab, ba)]
    if ab is None or ba is None or None in views:
        return None, 1.0
    weights = (order_weight(ab, strong_weight), order_weight(ba, strong_weight))
    return (weights[0] * views[0] + weights[1] * views[1]) / sum(weights), sum(weights) / 2  # type: ignore[operator]
