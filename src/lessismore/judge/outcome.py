"""Aggregation: two single verdicts (one per order) -> one pair outcome, from the candidate's point of view.

Sits between judge/protocol.py (which produces Judgments, two per pair) and judge/stats.py. A pair is a win only
when both orders prefer the candidate, a loss when both prefer the baseline, a tie (LIMA's "neither is
significantly better") for any other readable combination, including two orders that disagree, and "invalid" if
either order could not be read or is missing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

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


def pair_outcomes(
    judgments: Iterable[Judgment], candidate: str, lengths: Mapping[str, int] | None = None
) -> list[PairOutcome]:
    """Group single Judgments into pairs (prompt, baseline); a pair missing an order is "invalid" but still counted."""
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
            )
        )
    return out
