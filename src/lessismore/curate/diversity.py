"""How diverse is the curated set? The number metrics/curate.json reports next to the funnel.

Compares the selected set with a seeded random set of the same size from the same pool, on L2-normalised
embeddings (cosine distance = 1 - dot, from 0 for the same direction to 2 for opposite ones):
- spread: `mean_pairwise` (mean distance between two members) and `mean_nearest` (mean distance from a member to
  its nearest other member). Higher = more diverse; a low `mean_nearest` means near-duplicates in the set.
- coverage: `coverage_mean` / `coverage_max`, the mean and worst distance from any pool item to its nearest member.
  Lower = the set leaves less of the pool unrepresented.
Read the selected numbers against the random ones: a diverse selection has higher spread and a lower coverage_max.
k-center wins those by design; coverage_mean favours sets that follow the pool's density, as random ones do, so
k-center may lose it (it spends picks on the fringe, not on the crowded middle). Sets under two members: spread None.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_CHUNK = 4096  # pool rows per block when measuring coverage: 4096 x 1,000 float32 distances = 16 MB


def diversity(vectors: np.ndarray, selected: np.ndarray, *, seed: int) -> dict[str, Any]:
    """{"selected": measures, "random": measures, "n": set size, "pool": pool size} for `selected` (row indices or
    a boolean mask over `vectors`) and a seeded random set of the same size.

    >>> v = np.eye(4, dtype=np.float32)
    >>> diversity(v, np.array([0, 1]), seed=0)["selected"]
    {'mean_pairwise': 1.0, 'mean_nearest': 1.0, 'coverage_mean': 0.5, 'coverage_max': 1.0}
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    idx = _indices(selected, len(vectors))
    rng = np.random.default_rng(seed)
    random_idx = np.sort(rng.choice(len(vectors), size=len(idx), replace=False))
    return {
        "n": len(idx),
        "pool": len(vectors),
        "selected": measures(vectors, idx),
        "random": measures(vectors, random_idx),
    }


def measures(vectors: np.ndarray, idx: np.ndarray) -> dict[str, float | None]:
    """Spread and coverage of the set `vectors[idx]` within the pool `vectors` (see the module docstring)."""
    k = len(idx)
    if k == 0:
        return {"mean_pairwise": None, "mean_nearest": None, "coverage_mean": None, "coverage_max": None}
    members = vectors[idx]
    dist = np.clip(1.0 - members @ members.T, 0.0, 2.0)
    np.fill_diagonal(dist, 0.0)
    pairwise = float(dist.sum() / (k * (k - 1))) if k > 1 else None
    np.fill_diagonal(dist, np.inf)
    nearest = float(dist.min(axis=1).mean()) if k > 1 else None
    cover = np.concatenate(
        [
            np.clip(1.0 - vectors[i : i + _CHUNK] @ members.T, 0.0, 2.0).min(axis=1)
            for i in range(0, len(vectors), _CHUNK)
        ]
    )
    return {
        "mean_pairwise": _round(pairwise),
        "mean_nearest": _round(nearest),
        "coverage_mean": _round(float(cover.mean())),
        "coverage_max": _round(float(cover.max())),
    }


def _indices(selected: np.ndarray, n: int) -> np.ndarray:
    selected = np.asarray(selected)
    if selected.dtype == bool:
        if selected.shape != (n,):
            raise ValueError(f"selected: a mask of shape {selected.shape}, expected ({n},): one flag per pool row")
        return np.flatnonzero(selected)
    idx = selected.astype(np.int64).ravel()
    if len(idx) and (idx.min() < 0 or idx.max() >= n or len(np.unique(idx)) != len(idx)):
        raise ValueError(f"selected: indices must be distinct rows in [0, {n}); pass np.flatnonzero(mask) for a mask")
    return idx


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
