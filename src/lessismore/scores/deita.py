"""Score-first selection with a distance threshold (DEITA, Liu et al. 2024): the core of curate.variant "scored".

Sits in scores/, beside the scorers whose numbers it ranks by. Curate is to run it (not wired yet) where it runs
select.py's farthest_first, on the same inputs (L2-normalised vectors, a group per row, the room each group has)
plus one combined score per row (`combine`: a weighted sum of the scorers in params, e.g. quality,
complexity and IFD). Rows are visited best score first (ties: the earlier row); a row is taken when its group
still has room and its cosine similarity to every row taken so far is below 1 - min_distance, so a near-paraphrase
of a better example is passed over for the next distinct one. What is not taken says why, with the numbers a
reader needs to check it: its score against the cut, or the taken row it came too close to and how close.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

TAKEN, BELOW_CUT, UNSCORED, TOO_CLOSE, NO_ROOM = "taken", "score_below_cut", "unscored", "too_close", "no_room"


@dataclass(frozen=True)
class Decision:
    """Row k's outcome: `why[k]` one of the codes above; for too_close, `near[k]` the taken row it is closest to
    and `cos[k]` their cosine similarity (-1 and nan otherwise)."""

    order: np.ndarray  # the taken rows, in the order they were taken (best score first)
    why: list[str]
    near: np.ndarray
    cos: np.ndarray


def combine(scores: Mapping[str, Sequence[float | None]], weights: Mapping[str, float]) -> np.ndarray:
    """The weighted sum of each row's scores (a scorer with weight 0 is ignored); nan where a weighted score is
    missing (None: the scorer could not read a reply, or had nothing to score), so the row is never taken on a
    guess.

    >>> combine({"quality": [4.0, None, 5.0], "ifd": [0.5, 0.9, None]}, {"quality": 1.0, "ifd": -2.0}).tolist()
    [3.0, nan, nan]
    >>> combine({"quality": [4.0, None]}, {"quality": 1.0, "ifd": 0.0}).tolist()
    [4.0, nan]
    """
    used = {name: w for name, w in weights.items() if w}
    missing = sorted(set(used) - set(scores))
    if missing:
        raise ValueError(f"no {', '.join(missing)} scores for the weights given; score them or set the weight to 0")
    n = len(next(iter(scores.values()))) if scores else 0
    total = np.zeros(n, dtype=np.float64)
    for name, w in used.items():
        column = np.array([np.nan if v is None else float(v) for v in scores[name]], dtype=np.float64)
        total += w * column
    return total


def score_first(
    vectors: np.ndarray,
    score: np.ndarray,
    groups: np.ndarray,
    room: np.ndarray,
    *,
    cut: float,
    min_distance: float,
) -> Decision:
    """DEITA's pass over every row: best score first, taken when score >= cut, its group has room and it is at
    least `min_distance` (cosine distance) from everything taken so far. Stops looking once every group is full."""
    n = len(score)
    if vectors.shape[0] != n or groups.shape[0] != n:
        raise ValueError(f"score_first: {vectors.shape[0]} vectors, {groups.shape[0]} groups for {n} scores")
    room = np.array(room, dtype=np.int64)
    why = [NO_ROOM] * n
    near, cos = np.full(n, -1, dtype=np.int64), np.full(n, np.nan)
    scored = ~np.isnan(score)
    for k in np.flatnonzero(~scored).tolist():
        why[k] = UNSCORED
    for k in np.flatnonzero(scored & (score < cut)).tolist():
        why[k] = BELOW_CUT
    eligible = np.flatnonzero(scored & (score >= cut))
    visit = eligible[np.lexsort((eligible, -score[eligible]))]  # best first; a tie goes to the earlier row
    taken: list[int] = []
    for k in visit.tolist():
        if room[groups[k]] <= 0:
            if not room.any():
                break
            continue
        if taken:
            sims = vectors[taken] @ vectors[k]
            best = int(np.argmax(sims))
            if sims[best] > 1.0 - min_distance:
                why[k], near[k], cos[k] = TOO_CLOSE, taken[best], float(sims[best])
                continue
        taken.append(k)
        why[k] = TAKEN
        room[groups[k]] -= 1
    return Decision(np.asarray(taken, dtype=np.int64), why, near, cos)
