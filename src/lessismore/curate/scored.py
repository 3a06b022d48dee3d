"""Selection by model-based scores: curate.variant scored (and its ablations ifd_only, quality_only).

Sits in curate/, where funnel.py's selection step calls it in place of farthest-first, on the same plan (select.py:
the groups, their room, the per-source quotas and site temperature). What it does:
1. the candidates worth scoring: a seeded sample of curate.scores.per_pick per place in each group with room (all
   of them with per_pick 0), read back from the spill; a curated source's groups (people chose the rows) are not
   scored but taken whole within their quota, as lima does;
2. their scores, through `score` (scores/scorers.py, cached by content), combined as the variant says
   (scores/scorers.py `weights_for`): an IFD at or above curate.scores.ifd_max is vetoed (the prompt does not
   help predict the answer);
3. DEITA's score-first pass (scores/deita.py): best first, taken when its group has room, its score is at least the
   cut (variant scored only) and it is at least min_distance (cosine, on the prompt embeddings) from everything
   taken so far; with diversity none there are no embeddings and no distance check.
Every candidate not taken gets a reason and a detail with its numbers ("score 3.10 below the cut 4.20", "too close
(cos 0.93) to <id>"), and every scored candidate carries its scores on its record (meta["scores"]).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from lessismore.curate.diversity import diversity as diversity_measure
from lessismore.curate.select import Plan
from lessismore.curate.spill import Spill
from lessismore.records import Example
from lessismore.scores.deita import BELOW_CUT, NO_ROOM, TOO_CLOSE, UNSCORED, combine, score_first
from lessismore.scores.scorers import Scored, weights_for

if TYPE_CHECKING:
    from lessismore.config import Curate

Score = Callable[[list[Example]], Scored]  # candidates -> {kind: [score or None]} (scores/scorers.py Scorers)
Embed = Callable[[list[str]], np.ndarray]
Why = Callable[[int], tuple[str, str]]  # spill position -> (reason code, detail)
IFD_ABOVE_MAX, NOT_SCORED = "ifd_above_max", "not_scored"


@dataclass(frozen=True)
class Pick:
    """A selection's outcome, whatever chose it (funnel.py builds one for the other variants, without scores)."""

    chosen: np.ndarray  # the chosen spill positions, ascending
    why: Why  # why a spill position was left out
    scores: dict[int, dict[str, float | None]]  # spill position -> its scores and their combination
    diversity: dict[str, Any] | None  # the diversity measure over the embedded candidates (None: not embedded)
    summary: dict[str, Any]  # metrics/curate.json "scores": the distributions, the extremes ({}: unscored)


def pick_scored(
    spill: Spill,
    kept: np.ndarray,
    p: Plan,
    spec: Curate,
    *,
    seed: int,
    score: Score,
    embed: Embed | None,
    curated: frozenset[str],
) -> Pick:
    """The selection over the `kept` spill positions (ascending) whose keys `p` planned (see the module doc)."""
    s = spec.scores
    weights = weights_for(spec.variant, s.weights)
    cut = s.cut if spec.variant == "scored" else -np.inf
    order = np.asarray(p.order, dtype=np.int64)
    whole = np.array([source in curated for source, _ in p.labels], dtype=bool)  # groups people chose
    room = np.where(whole, 0, p.room)
    rng = np.random.default_rng(seed)
    unseen = {g: np.flatnonzero(p.groups == g) for g in np.flatnonzero(room > 0).tolist()}
    rows = np.zeros(0, dtype=np.int64)  # the scored rows (positions in p.order), ascending
    examples: list[Example] = []
    values: Scored = {kind: [] for kind in weights}
    vectors = np.zeros((0, 1), dtype=np.float32)
    left = room.copy()
    while True:  # a sample per place left; again where vetoes or the cut left places open and candidates remain
        new = [_draw(unseen, g, int(left[g]) * s.per_pick, rng) for g in unseen if left[g] > 0 and len(unseen[g])]
        if not new:
            break
        fresh = np.sort(np.concatenate(new))
        at = kept[order[fresh]]
        by_position = dict(zip(np.sort(at).tolist(), spill.take(np.sort(at)), strict=True))
        batch = [by_position[k] for k in at.tolist()]
        got = score(batch)
        got_vectors = _embed(embed, batch)
        merged = np.argsort(np.concatenate([rows, fresh]), kind="stable")  # keep every array in row order
        rows = np.concatenate([rows, fresh])[merged]
        examples = [[*examples, *batch][m] for m in merged.tolist()]
        values = {kind: [[*values.get(kind, []), *got[kind]][m] for m in merged.tolist()] for kind in got}
        vectors = np.concatenate([vectors.reshape(-1, got_vectors.shape[1]), got_vectors])[merged]
        total, ifd = _combined(values, weights, s.ifd_max)
        decision = score_first(
            vectors, total, p.groups[rows], room, cut=cut, min_distance=s.min_distance if embed else 0.0
        )
        left = room - np.bincount(p.groups[rows[decision.order]], minlength=len(room))
        if not s.per_pick:
            break  # every candidate was scored at once
    if not len(rows):
        total, ifd = np.zeros(0), np.zeros(0)
        decision = score_first(vectors, total, p.groups[rows], room, cut=cut, min_distance=0.0)
    hand = dataclasses.replace(p, room=np.where(whole, p.room, 0)).pick(None, None, seed)
    chosen = np.sort(kept[np.concatenate([order[rows[decision.order]], hand])])

    at = kept[order[rows]]  # the scored rows' spill positions
    scores = {
        int(k): {**{kind: _round(values[kind][i]) for kind in values}, "combined": _round(total[i])}
        for i, k in enumerate(at.tolist())
    }
    row_of = {int(k): i for i, k in enumerate(at.tolist())}
    group_of = np.empty(len(order), dtype=np.int64)
    group_of[order] = p.groups  # a key index's group
    unsampled = np.zeros(len(p.room), dtype=bool)  # groups with rows never scored: their places filled first
    unsampled[[g for g, pool in unseen.items() if len(pool)]] = True
    detail = _Detail(spill, at, values, total, ifd, decision, cut, s, p, kept, group_of, unsampled)

    def why(k: int) -> tuple[str, str]:
        return detail.of(k, row_of.get(k))

    measure = None
    if embed is not None and len(decision.order):
        measure = diversity_measure(vectors, decision.order, seed=seed)
    taken = np.zeros(len(rows), dtype=bool)
    taken[decision.order] = True
    summary = summarise(examples, values, total, taken, weights, s, ifd >= s.ifd_max)
    return Pick(chosen, why, scores, measure, summary)


def _draw(unseen: dict[int, np.ndarray], g: int, want: int, rng: np.random.Generator) -> np.ndarray:
    """A seeded sample of `want` of group g's rows not scored yet (all of them when want is 0 or more than left),
    removed from `unseen`."""
    pool = unseen[g]
    take = pool if not want or want >= len(pool) else np.sort(rng.choice(pool, size=want, replace=False))
    unseen[g] = np.setdiff1d(pool, take, assume_unique=True)
    return take


def _embed(embed: Embed | None, batch: list[Example]) -> np.ndarray:
    """The prompts' L2-normalised embeddings; one zero column each without an embedder (no distance check)."""
    if embed is None:
        return np.zeros((len(batch), 1), dtype=np.float32)
    return np.asarray(embed([ex.prompt for ex in batch]), dtype=np.float32)


def _combined(values: Scored, weights: Mapping[str, float], ifd_max: float) -> tuple[np.ndarray, np.ndarray]:
    """(the combined score, nan where a weighted score is missing or the IFD is vetoed; the IFD, nan if none)."""
    total = combine(values, weights)
    n = len(total)
    ifd = np.array([np.nan if v is None else v for v in values.get("ifd", [None] * n)], dtype=np.float64)
    total[ifd >= ifd_max] = np.nan  # nan compares False
    return total, ifd


def _round(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 4)


@dataclass(frozen=True)
class _Detail:
    """The reason and detail of each left-out spill position: its decision in the score-first pass, or why it was
    not scored at all."""

    spill: Spill
    at: np.ndarray
    values: Scored
    total: np.ndarray
    ifd: np.ndarray
    decision: Any
    cut: float
    spec: Any  # curate.scores
    plan: Plan
    kept: np.ndarray
    group_of: np.ndarray  # key index -> its group
    unsampled: np.ndarray  # group -> whether its rows were sampled for scoring (a row left out: not_scored)

    def of(self, k: int, i: int | None) -> tuple[str, str]:
        key_index = int(np.searchsorted(self.kept, k))  # kept is ascending: the plan's index of spill position k
        if i is None:  # never scored: a curated source's row past its quota, a full group's, or outside the sample
            if self.unsampled[self.group_of[key_index]]:
                sample = f"{self.spec.per_pick} per place (curate.scores.per_pick)"
                return NOT_SCORED, f"not in the seeded sample of {sample}; raise it to score more"
            return self.plan.reason(key_index), ""
        parts = self.parts(i)
        code = self.decision.why[i]
        if code == BELOW_CUT:
            return BELOW_CUT, f"combined score {self.total[i]:.2f} below the cut {self.cut:g}; {parts}"
        if code == UNSCORED and self.ifd[i] >= self.spec.ifd_max:
            return IFD_ABOVE_MAX, f"IFD {self.ifd[i]:.3f} >= curate.scores.ifd_max {self.spec.ifd_max:g}; {parts}"
        if code == UNSCORED:
            missing = [kind for kind, v in self.values.items() if v[i] is None]
            return UNSCORED, f"no {', '.join(missing)} score could be read; {parts}"
        if code == TOO_CLOSE:
            near = int(self.at[self.decision.near[i]])
            other, cos = self.spill.keys[near].id, self.decision.cos[i]
            return f"{TOO_CLOSE}:{other}", f"too close (cos {cos:.2f}) to {other}: {self.spill.where(near)}; {parts}"
        assert code == NO_ROOM, code
        filled = f"combined score {self.total[i]:.2f}: the better scored filled its place"
        return self.plan.reason(key_index), f"{filled}; {parts}"

    def parts(self, i: int) -> str:
        shown = ", ".join(f"{kind} {_fmt(v[i])}" for kind, v in self.values.items())
        return f"scores: {shown}"


def _fmt(value: float | None) -> str:
    return "none" if value is None else f"{value:.3f}"


def summarise(
    examples: Sequence[Example],
    values: Scored,
    total: np.ndarray,
    taken: np.ndarray,
    weights: Mapping[str, float],
    spec: Any,
    vetoed: np.ndarray,
    extremes: int = 3,
) -> dict[str, Any]:
    """metrics/curate.json "scores": per source and kind, the distribution of the scored candidates and of the
    selected (n, mean, quartiles); the `extremes` best and worst scored candidates of each source."""
    sources = sorted({ex.origin.source for ex in examples})
    per_source: dict[str, Any] = {}
    for source in sources:
        mine = np.array([ex.origin.source == source for ex in examples], dtype=bool)
        kinds = {**values, "combined": [None if not np.isfinite(t) else float(t) for t in total]}
        per_source[source] = {
            kind: {"candidates": _stats(col, mine), "selected": _stats(col, mine & taken)}
            for kind, col in kinds.items()
        }
        ranked = [i for i in np.argsort(-np.nan_to_num(total, nan=-np.inf), kind="stable") if mine[i]]
        ranked = [i for i in ranked if np.isfinite(total[i])]
        per_source[source]["extremes"] = {
            "top": [_example(examples[i], values, total, i, taken) for i in ranked[:extremes]],
            "bottom": [_example(examples[i], values, total, i, taken) for i in ranked[::-1][:extremes]],
        }
    kinds = {**values, "combined": [None if not np.isfinite(t) else float(t) for t in total]}
    sources_of = [ex.origin.source for ex in examples]
    return {
        "histograms": {kind: histogram(col, sources_of, taken) for kind, col in kinds.items()},
        "weights": dict(weights),
        "cut": spec.cut,
        "min_distance": spec.min_distance,
        "ifd_max": spec.ifd_max,
        "scored": len(examples),
        "vetoed_ifd": int(vetoed.sum()),
        "per_source": per_source,
    }


def histogram(
    column: Sequence[float | None], sources: Sequence[str], taken: np.ndarray, bins: int = 12
) -> dict[str, Any]:
    """One kind's scores binned (edges shared by every source, from the lowest to the highest score), counted per
    source for the scored candidates and for the selected: the report draws them over each other.

    >>> h = histogram([1.0, 2.0, None, 3.0], ["a", "a", "a", "b"], np.array([True, False, False, True]), bins=2)
    >>> h["edges"], h["per_source"]["a"], h["per_source"]["b"]["candidates"]
    ([1.0, 2.0, 3.0], {'candidates': [1, 1], 'selected': [1, 0]}, [0, 1])
    """
    have = np.array([v is not None for v in column], dtype=bool)
    vals = np.array([v if v is not None else np.nan for v in column], dtype=np.float64)
    if not have.any():
        return {"edges": [], "per_source": {}}
    low, high = float(vals[have].min()), float(vals[have].max())
    edges = np.linspace(low, high if high > low else low + 1.0, bins + 1)
    per_source = {}
    for source in sorted(set(sources)):
        mine = have & np.array([s == source for s in sources], dtype=bool)
        per_source[source] = {
            "candidates": np.histogram(vals[mine], edges)[0].tolist(),
            "selected": np.histogram(vals[mine & taken], edges)[0].tolist(),
        }
    return {"edges": [round(float(e), 4) for e in edges], "per_source": per_source}


def _stats(column: Sequence[float | None], mask: np.ndarray) -> dict[str, Any]:
    vals = np.array([v for v, m in zip(column, mask, strict=True) if m and v is not None], dtype=np.float64)
    if not len(vals):
        return {"n": 0}
    q = np.quantile(vals, [0.25, 0.5, 0.75])
    return {"n": len(vals), "mean": round(float(vals.mean()), 4), "quartiles": [round(float(x), 4) for x in q]}


def _example(ex: Example, values: Scored, total: np.ndarray, i: int, taken: np.ndarray) -> dict[str, Any]:
    return {
        "id": ex.id,
        "prompt": " ".join(ex.prompt.split())[:160],
        "scores": {kind: _round(v[i]) for kind, v in values.items()} | {"combined": _round(total[i])},
        "selected": bool(taken[i]),
    }
