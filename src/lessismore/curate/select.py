"""Selection under a budget: the last step of curate. Seeded, deterministic, and nothing vanishes.

`allocate` splits the budget N into (source, site) groups. A curated source is taken whole first (up to its quota);
a source with a quota gets min(quota, what it has), scaled down in proportion when the quotas add up to more than N;
sources without a quota share what is left as curate.mix says: pooled into one (union, the default: no source gets a
share), equally, or in proportion to their candidates. Inside a source, its sites (meta "site", Stack Exchange)
share its part in proportion to n ** (1 / tau), LIMA's site temperature (tau = 3; 1: in proportion to size; large:
equal). Every split is water-filled: a group with fewer candidates than its share keeps them all and the rest goes
to the others.
`plan` fills each group's part over the candidates' Keys (id, origin, site: not their text, so a pool of millions
fits): with embeddings, by greedy k-center (farthest-first) over the whole selection; without, by a seeded random
draw per group. `sample` (variant "random", the ablation) is a seeded sample of N. Both give the chosen indices;
`select` does the same over a list of examples and returns (selected in input order, [(example, reason)]). A
reason is "over_quota" when the example's source reached its quota, "over_budget" otherwise. Candidates are put in
id order before any choice, so the result depends on the seed, not on the input order.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

import numpy as np

from lessismore.curate.keys import Group, Key, Keys
from lessismore.records import Example

K = TypeVar("K", bound=Hashable)
Mix = Literal["union", "equal", "proportional"]  # params curate.mix: how sources without a quota share
UNION: Group = ("*", "")  # mix "union": every source without a quota, pooled


def water_fill(weights: Mapping[K, float], caps: Mapping[K, int], total: int) -> dict[K, int]:
    """Split `total` whole units in proportion to `weights`, no key above its cap; what a capped key cannot take
    goes to the others. Rounding by largest remainder, exact ties to the smaller key.

    >>> water_fill({"a": 1, "b": 1, "c": 1}, {"a": 1, "b": 10, "c": 10}, 9)
    {'a': 1, 'b': 4, 'c': 4}
    >>> water_fill({"a": 1, "b": 1}, {"a": 10, "b": 10}, 3)
    {'a': 2, 'b': 1}
    >>> water_fill({"a": 1, "b": 1}, {"a": 2, "b": 3}, 100)
    {'a': 2, 'b': 3}
    """
    out = {k: 0 for k in caps}
    active = sorted(k for k in caps if caps[k] > 0 and weights.get(k, 0) > 0)
    left = max(total, 0)
    while active and left > 0:
        mass = sum(weights[k] for k in active)
        shares = {k: left * weights[k] / mass for k in active}
        full = [k for k in active if shares[k] >= caps[k]]
        if not full:  # nobody is capped: round the shares and stop
            floors = {k: math.floor(shares[k]) for k in active}
            by_remainder = sorted(active, key=lambda k: -round(shares[k] - floors[k], 12))  # stable: key order
            for k in by_remainder[: left - sum(floors.values())]:
                floors[k] += 1
            return out | floors
        for k in full:
            out[k] = caps[k]
            left -= caps[k]
        active = [k for k in active if k not in full]
    return out


def source_parts(
    available: Mapping[str, int],
    budget: int,
    quotas: Mapping[str, int],
    first: frozenset[str] = frozenset(),
    mix: Mix = "equal",
) -> dict[str, int]:
    """How many examples each source gets: the sources in `first` (curated ones) whole, up to their quota; then
    quotas (scaled down to fit what is left), then the rest split over the sources without a quota: equal shares
    (`mix` "equal") or in proportion to their candidates ("proportional"). A cut never leaves room unused.
    ("union", no split at all, is done by `select`: it pools those sources into one before calling this.)

    >>> source_parts({"se": 50, "wiki": 50, "hand": 3}, 20, {"se": 8})
    {'hand': 3, 'se': 8, 'wiki': 9}
    >>> source_parts({"a": 100, "b": 100}, 10, {"a": 10, "b": 5})
    {'a': 7, 'b': 3}
    >>> source_parts({"lima": 12, "se": 50}, 20, {"se": 20}, first=frozenset({"lima"}))  # curated: whole, first
    {'lima': 12, 'se': 8}
    >>> source_parts({"big": 90, "small": 10}, 20, {}, mix="proportional")
    {'big': 18, 'small': 2}
    """
    whole = {s: min(quotas.get(s, 0) or n, n) for s, n in available.items() if s in first}
    taken = water_fill(whole, whole, budget)  # scaled down only when the curated sources alone exceed the budget
    budget -= sum(taken.values())
    available = {s: n for s, n in available.items() if s not in first}
    claims = {s: min(quotas.get(s, 0), n) for s, n in available.items() if quotas.get(s, 0) > 0}
    parts = water_fill(claims, claims, budget)  # proportional cut, only when the claims exceed the budget
    free = {s: n for s, n in available.items() if s not in claims}
    weights = {s: float(n) if mix == "proportional" else 1.0 for s, n in free.items()}
    parts |= water_fill(weights, free, budget - sum(parts.values()))
    return dict(sorted((parts | taken).items()))


def allocate(
    sizes: Mapping[Group, int],
    budget: int,
    quotas: Mapping[str, int],
    *,
    site_temperature: float,
    first: frozenset[str] = frozenset(),
    mix: Mix = "equal",
) -> dict[Group, int]:
    """The budget split over (source, site) groups of `sizes` candidates; each part is at most its group's size.

    >>> sizes = {("se", "math"): 900, ("se", "cooking"): 100, ("wiki", ""): 500}
    >>> allocate(sizes, 100, {"se": 60}, site_temperature=1.0)
    {('se', 'cooking'): 6, ('se', 'math'): 54, ('wiki', ''): 40}
    >>> allocate(sizes, 100, {"se": 60}, site_temperature=3.0)  # LIMA: small sites get more than their size share
    {('se', 'cooking'): 19, ('se', 'math'): 41, ('wiki', ''): 40}
    """
    available: Counter[str] = Counter()
    for (source, _), n in sizes.items():
        available[source] += n
    parts = source_parts(available, budget, quotas, first, mix)
    out: dict[Group, int] = {}
    for source, part in sorted(parts.items()):
        sites = {site: n for (src, site), n in sizes.items() if src == source}
        weights = {site: n ** (1.0 / site_temperature) for site, n in sites.items()}
        out |= {(source, site): k for site, k in sorted(water_fill(weights, sites, part).items())}
    return out


def farthest_first(vectors: np.ndarray, groups: np.ndarray, room: np.ndarray, seed: int) -> np.ndarray:
    """Greedy k-center: row indices of `vectors` (L2-normalised) in pick order. The first pick is a seeded random
    row; each next one is the row farthest (cosine distance) from every pick so far among rows whose group
    (`groups[i]`, an index into `room`) still has room. Stops when every group is full or out of rows.
    """
    room = np.array(room, dtype=np.int64)
    live = np.flatnonzero(room[groups] > 0)  # rows that may still be picked, in row (= id) order
    work, live_groups = vectors[live], groups[live]  # copied once, and again only when compacted
    is_open = np.ones(len(live), dtype=bool)
    min_dist = np.full(len(live), np.inf, dtype=np.float32)  # distance to the nearest pick so far
    picks: list[int] = []
    pos = int(np.random.default_rng(seed).integers(len(live))) if len(live) else -1
    while pos >= 0:
        picks.append(int(live[pos]))
        group = live_groups[pos]
        room[group] -= 1
        is_open[pos] = False
        if room[group] == 0:
            is_open &= live_groups != group
        np.minimum(min_dist, 1.0 - work @ work[pos], out=min_dist)
        if is_open.sum() * 2 < len(live):  # amortised compaction: later steps touch only open rows
            live, work, live_groups, min_dist = live[is_open], work[is_open], live_groups[is_open], min_dist[is_open]
            is_open = np.ones(len(live), dtype=bool)
        pos = int(np.argmax(np.where(is_open, min_dist, -np.inf))) if is_open.any() else -1
    return np.asarray(picks, dtype=np.int64)


@dataclass(frozen=True)
class Plan:
    """Who may be picked and how many from each group: `plan` builds it from every candidate's Key, before any
    embedding, so a pool of millions costs its keys, not its texts.

    `order` lists the candidates' indices in id order; `groups[k]` is the group of candidate order[k] (an index
    into `room`, what each group may take, and into `labels`, its (source, site)); `full` the sources whose quota
    the parts fill.
    """

    keys: Keys
    order: np.ndarray
    groups: np.ndarray
    room: np.ndarray
    full: frozenset[str]
    labels: tuple[Group, ...]
    quota_full: np.ndarray  # candidate k's source is in `full`

    def candidates(self, per_pick: int, seed: int) -> np.ndarray:
        """Positions in `order` worth embedding: every candidate of a group with room, or, with `per_pick` > 0, a
        seeded sample of at most per_pick x its room from each such group (farthest-first then looks at that many
        candidates per pick, so embeddings cost in proportion to the budget, not to the pool)."""
        rng = np.random.default_rng(seed)
        out = []
        for g, k in enumerate(self.room.tolist()):
            rows = np.flatnonzero(self.groups == g)
            if k > 0 and per_pick > 0 and len(rows) > per_pick * k:
                rows = np.sort(rng.choice(rows, size=per_pick * k, replace=False))
            out.append(rows if k > 0 else rows[:0])
        return np.sort(np.concatenate(out)) if out else np.zeros(0, dtype=np.int64)

    def pick(self, vectors: np.ndarray | None, rows: np.ndarray | None, seed: int) -> np.ndarray:
        """The chosen candidates' indices into `keys`, ascending: each group's room filled by k-center over
        `vectors` (one L2-normalised row per position in `rows`) when given, else by a seeded random draw per group
        over every candidate."""
        if vectors is None:
            picked = _random_fill(self.groups, self.room, seed)
        else:
            vectors = np.asarray(vectors, dtype=np.float32)
            rows = np.arange(len(self.order)) if rows is None else rows
            _check_vectors(vectors, len(rows))
            picked = rows[farthest_first(vectors, self.groups[rows], self.room, seed)]
        return np.sort(np.asarray(self.order, dtype=np.int64)[picked]) if len(picked) else picked.astype(np.int64)

    def reason(self, k: int) -> str:
        """Why candidate `k` was left out."""
        return "over_quota" if self.quota_full[k] else "over_budget"


Picked = tuple[list[Example], list[tuple[Example, str]]]  # (selected in input order, [(left out, reason)])


def plan(
    keys: Keys,
    budget: int,
    quotas: Mapping[str, int],
    *,
    site_temperature: float,
    first: frozenset[str] = frozenset(),
    mix: Mix = "equal",
) -> Plan:
    """The groups and their room for `budget`: the sources in `first` (curated) are taken whole, up to their
    quota, before the others share the rest. The sources without a quota share what is left as `mix` says:
    "union" pools them into one group (no source gets a share: the selection's own choice makes the mix, and the
    funnel shows it), "equal" or "proportional" split it first (see `source_parts`)."""
    order = keys.order()  # id, then source, file, row
    (source, sources), (site, sites) = keys.codes("source"), keys.codes("site")
    pooled = {name for name in sources if quotas.get(name, 0) <= 0} - first
    pairs, inverse = np.unique(source[order] * max(len(sites), 1) + site[order], return_inverse=True)
    labels = [
        UNION if mix == "union" and sources[i] in pooled else (sources[i], sites[j])
        for i, j in zip(*np.divmod(pairs, max(len(sites), 1)), strict=True)
    ]
    sizes: Counter[Group] = Counter()
    for label, n in zip(labels, np.bincount(inverse, minlength=len(labels)).tolist(), strict=True):
        sizes[label] += n
    parts = allocate(sizes, budget, quotas, site_temperature=site_temperature, first=first, mix=mix)
    index = {g: i for i, g in enumerate(sorted(parts))}
    groups = np.array([index[g] for g in labels], dtype=np.int64)[inverse]
    room = np.array([parts[g] for g in index], dtype=np.int64)
    full = {s for s, q in quotas.items() if q > 0 and sum(k for (src, _), k in parts.items() if src == s) >= q}
    quota_full = np.isin(source, [i for i, name in enumerate(sources) if name in full])
    return Plan(keys, order, groups, room, frozenset(full), tuple(index), quota_full)


def select(
    examples: list[Example],
    budget: int,
    quotas: Mapping[str, int],
    *,
    site_temperature: float,
    vectors: np.ndarray | None,
    seed: int,
    first: frozenset[str] = frozenset(),
    mix: Mix = "equal",
) -> Picked:
    """`plan` then `Plan.pick` over every candidate: k-center over `vectors` (rows aligned with `examples`,
    L2-normalised) when given, else a seeded random draw per group. Returns (selected, [(left out, reason)])."""
    p = plan(
        Keys.of(Key.of(ex) for ex in examples), budget, quotas, site_temperature=site_temperature, first=first, mix=mix
    )
    if vectors is not None:
        vectors = np.asarray(vectors, dtype=np.float32)
        _check_vectors(vectors, len(examples))
        vectors = vectors[p.order]
    return split(examples, p.pick(vectors, None, seed), p.reason)


def split(examples: Sequence[Example], chosen: np.ndarray, reason: Callable[[int], str]) -> Picked:
    """(the examples at `chosen`, the others with `reason(index)`), both in input order."""
    picked = set(chosen.tolist())
    selected = [ex for i, ex in enumerate(examples) if i in picked]
    left_out = [(ex, reason(i)) for i, ex in enumerate(examples) if i not in picked]
    assert len(selected) + len(left_out) == len(examples), "select lost or duplicated an example"
    return selected, left_out


def sample(keys: Keys, budget: int, seed: int) -> np.ndarray:
    """A seeded random sample of `budget` candidates (variant "random", the ablation): their indices, ascending;
    the others are left out "over_budget". The draw does not depend on the input order."""
    order = keys.order().tolist()
    random.Random(seed).shuffle(order)
    return np.sort(np.asarray(order[:budget], dtype=np.int64))


def _random_fill(groups: np.ndarray, room: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    picks = [rng.permutation(np.flatnonzero(groups == g))[:k] for g, k in enumerate(room.tolist())]
    return np.concatenate(picks) if picks else np.zeros(0, dtype=np.int64)


def _check_vectors(vectors: np.ndarray, n: int) -> None:
    if vectors.ndim != 2 or len(vectors) != n:
        raise ValueError(f"vectors: shape {vectors.shape}, expected ({n}, dim): one row per example, in input order")
    norms = np.linalg.norm(vectors, axis=1)
    if n and not np.allclose(norms, 1.0, atol=1e-3):
        raise ValueError("vectors: rows must be L2-normalised (cosine distance is 1 - dot); embed with normalise on")
