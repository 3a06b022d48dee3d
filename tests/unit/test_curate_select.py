"""curate selection: the budget split (quotas, water-filling, site temperature), k-center vs random, diversity."""

from __future__ import annotations

import random

import numpy as np
import pytest

from lessismore.curate.diversity import diversity
from lessismore.curate.keys import Key, Keys
from lessismore.curate.select import (
    allocate,
    farthest_first,
    plan,
    sample,
    select,
    source_parts,
    split,
    water_fill,
)
from lessismore.records import Example, Message, Origin


def ex(source: str, i: int, site: str = "") -> Example:
    meta = {"site": site} if site else {}
    return Example(
        messages=(Message("user", f"{source} {site} question {i}?"), Message("assistant", f"answer {i}")),
        origin=Origin(source, f"data/{source}.jsonl", str(i)),
        meta=meta,
    )


def pool(counts: dict[str, int]) -> list[Example]:
    return [ex(s, i) for s, n in counts.items() for i in range(n)]


def per_source(examples: list[Example]) -> dict[str, int]:
    out: dict[str, int] = {}
    for e in examples:
        out[e.origin.source] = out.get(e.origin.source, 0) + 1
    return dict(sorted(out.items()))


def clustered(sizes: list[int], dim: int = 32, noise: float = 0.05, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Tight clusters around random unit centres: (L2-normalised rows, cluster label of each row)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(sizes), dim))
    labels = np.repeat(np.arange(len(sizes)), sizes)
    rows = centres[labels] / np.linalg.norm(centres[labels], axis=1, keepdims=True)
    rows = rows + noise * rng.normal(size=rows.shape) / np.sqrt(dim)
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32), labels


# ----------------------------------------------------------------------------------------------------------------
# the budget split


def test_water_fill_respects_caps_and_hands_the_rest_on():
    caps = {"a": 2, "b": 100, "c": 100, "d": 0}
    assert water_fill({"a": 1, "b": 1, "c": 1, "d": 1}, caps, 12) == {"a": 2, "b": 5, "c": 5, "d": 0}
    assert water_fill({"a": 1, "b": 1, "c": 1}, {"a": 1, "b": 1, "c": 1}, 10) == {"a": 1, "b": 1, "c": 1}
    assert water_fill({"a": 1, "b": 1, "c": 1}, {"a": 5, "b": 5, "c": 5}, 0) == {"a": 0, "b": 0, "c": 0}
    assert water_fill({"c": 1, "a": 1, "b": 1}, {"c": 9, "a": 9, "b": 9}, 4) == {"c": 1, "a": 2, "b": 1}  # ties: a


def test_quota_sources_get_their_quota_and_the_others_share_the_rest():
    available = {"se": 50, "wiki": 50, "hand": 50, "alpaca": 50}
    assert source_parts(available, 20, {"se": 8, "wiki": 5}) == {"alpaca": 4, "hand": 3, "se": 8, "wiki": 5}


def test_a_quota_above_what_the_source_has_gives_the_rest_to_the_others():
    assert source_parts({"se": 3, "wiki": 50}, 20, {"se": 10}) == {"se": 3, "wiki": 17}


def test_quotas_over_the_budget_are_scaled_down_in_proportion():
    assert source_parts({"a": 100, "b": 100, "c": 100}, 10, {"a": 20, "b": 10, "c": 10}) == {"a": 5, "b": 3, "c": 2}
    assert source_parts({"a": 100, "b": 100}, 9, {"a": 10, "b": 10}) == {"a": 5, "b": 4}  # the tie goes to "a"
    assert source_parts({"a": 100, "b": 100, "free": 100}, 9, {"a": 10, "b": 10})["free"] == 0


def test_free_sources_water_fill_around_small_ones_and_empty_sources_get_nothing():
    parts = source_parts({"big": 100, "small": 2, "empty": 0, "mid": 100}, 20, {"gone": 5})
    assert parts == {"big": 9, "empty": 0, "mid": 9, "small": 2}
    assert source_parts({}, 10, {"se": 5}) == {}


@pytest.mark.parametrize(
    ("tau", "expected"),
    [
        (1.0, {"math": 80, "bio": 16, "cook": 4}),
        (3.0, {"math": 51, "bio": 30, "cook": 19}),
        (1e9, {"math": 34, "bio": 33, "cook": 33}),
    ],
)
def test_site_temperature_flattens_the_site_mix(tau, expected):
    sizes = {("se", "math"): 2000, ("se", "bio"): 400, ("se", "cook"): 100, ("wiki", ""): 10}
    parts = allocate(sizes, 110, {"se": 100}, site_temperature=tau)
    assert {site: k for (src, site), k in parts.items() if src == "se"} == expected
    assert parts[("wiki", "")] == 10


def test_a_small_site_gives_what_it_cannot_take_to_the_other_sites():
    sizes = {("se", "math"): 1000, ("se", "tiny"): 3, ("se", "bio"): 1000}
    assert allocate(sizes, 60, {}, site_temperature=1e9) == {("se", "bio"): 29, ("se", "math"): 28, ("se", "tiny"): 3}


# ----------------------------------------------------------------------------------------------------------------
# select


def test_kcenter_first_picks_hit_every_cluster_where_random_draws_often_do_not():
    vectors, labels = clustered([100, 50, 20, 10, 5])
    picks = farthest_first(vectors, np.zeros(len(vectors), dtype=np.int64), np.array([5]), seed=0)
    assert len(set(labels[picks].tolist())) == 5
    examples = [ex("se", i) for i in range(len(vectors))]
    row = {e.id: i for i, e in enumerate(examples)}
    for seed in range(10):
        chosen, _ = select(examples, 5, {}, site_temperature=1.0, vectors=vectors, seed=seed)
        assert len({labels[row[e.id]] for e in chosen}) == 5
    random_hits = [
        len({labels[row[e.id]] for e in select(examples, 5, {}, site_temperature=1.0, vectors=None, seed=s)[0]})
        for s in range(20)
    ]
    assert sum(h == 5 for h in random_hits) <= 3  # 5 of 5 clusters by chance: about 1 draw in 30 here


def test_kcenter_fills_every_group_to_its_part():
    vectors, _ = clustered([30, 30, 30])
    groups = np.array([0] * 60 + [1] * 30)
    picks = farthest_first(vectors, groups, np.array([4, 7]), seed=3)
    assert np.bincount(groups[picks]).tolist() == [4, 7] and len(set(picks.tolist())) == 11


def test_select_is_deterministic_and_does_not_depend_on_input_order():
    examples = [ex("se", i, site=("math", "bio", "cook")[i % 3]) for i in range(60)] + pool({"wiki": 40})
    vectors, _ = clustered([25, 25, 25, 25])
    perm = np.random.default_rng(1).permutation(len(examples))
    shuffled = [examples[i] for i in perm]
    ids = lambda picked: sorted(e.id for e in picked)  # noqa: E731
    for vecs in (vectors, None):
        args = {"site_temperature": 3.0, "seed": 7}
        first = select(examples, 20, {"se": 12}, vectors=vecs, **args)
        again = select(shuffled, 20, {"se": 12}, vectors=None if vecs is None else vecs[perm], **args)
        assert ids(first[0]) == ids(again[0]) and len(first[0]) == 20
        assert first == select(examples, 20, {"se": 12}, vectors=vecs, **args)
        other = select(examples, 20, {"se": 12}, vectors=vecs, site_temperature=3.0, seed=8)
        assert ids(first[0]) != ids(other[0])


def test_select_loses_nothing_keeps_input_order_and_gives_reasons():
    examples = pool({"se": 10, "wiki": 10})
    random.Random(0).shuffle(examples)
    selected, left_out = select(examples, 8, {"se": 3}, site_temperature=3.0, vectors=None, seed=0)
    assert per_source(selected) == {"se": 3, "wiki": 5}
    assert selected == [e for e in examples if e in selected]
    assert sorted(e.id for e in selected + [e for e, _ in left_out]) == sorted(e.id for e in examples)
    assert {e.origin.source: r for e, r in left_out} == {"se": "over_quota", "wiki": "over_budget"}


def test_mix_says_how_sources_without_a_quota_share_and_union_gives_none_a_share():
    examples = pool({"big": 90, "small": 10, "capped": 10})
    args = {"site_temperature": 3.0, "vectors": None, "seed": 0}
    equal = select(examples, 24, {"capped": 4}, mix="equal", **args)[0]
    proportional = select(examples, 24, {"capped": 4}, mix="proportional", **args)[0]
    union = select(examples, 24, {"capped": 4}, mix="union", **args)[0]
    assert per_source(equal) == {"big": 10, "capped": 4, "small": 10}
    assert per_source(proportional) == {"big": 18, "capped": 4, "small": 2}
    mixed = per_source(union)  # one pool of 100: the draw makes the mix, about 9 to 1 here
    assert mixed["capped"] == 4 and mixed["big"] + mixed["small"] == 20 and mixed["small"] < 10
    # union with embeddings: farthest-first over the pooled sources, whatever their sizes
    vectors, _ = clustered([90, 10, 10])
    spread = select(examples, 24, {"capped": 4}, site_temperature=3.0, vectors=vectors, seed=0, mix="union")[0]
    assert len(spread) == 24 and per_source(spread)["capped"] == 4


def test_quotas_cut_by_the_budget_leave_out_as_over_budget():
    selected, left_out = select(
        pool({"a": 5, "b": 5}), 4, {"a": 5, "b": 5}, site_temperature=3.0, vectors=None, seed=0
    )
    assert per_source(selected) == {"a": 2, "b": 2}
    assert [r for _, r in left_out] == ["over_budget"] * 6


def test_select_follows_the_site_allocation():
    examples = [ex("se", i, site) for site, n in (("math", 200), ("cook", 20)) for i in range(n)] + pool({"w": 50})
    selected, _ = select(examples, 60, {"se": 40}, site_temperature=3.0, vectors=None, seed=0)
    counts = {site: sum(e.meta.get("site") == site for e in selected) for site in ("math", "cook")}
    sizes = {("se", "math"): 200, ("se", "cook"): 20, ("w", ""): 50}
    parts = allocate(sizes, 60, {"se": 40}, site_temperature=3.0)
    assert counts == {"math": parts[("se", "math")], "cook": parts[("se", "cook")]} == {"math": 27, "cook": 13}


def test_select_handles_an_empty_pool_and_rejects_misaligned_vectors():
    assert select([], 10, {}, site_temperature=3.0, vectors=np.zeros((0, 4), np.float32), seed=0) == ([], [])
    examples = pool({"se": 3})
    with pytest.raises(ValueError, match="one row per example"):
        select(examples, 2, {}, site_temperature=3.0, vectors=np.eye(4, dtype=np.float32), seed=0)
    with pytest.raises(ValueError, match="L2-normalised"):
        select(examples, 2, {}, site_temperature=3.0, vectors=np.ones((3, 4), np.float32), seed=0)


def test_random_sample_takes_exactly_the_budget():
    examples = pool({"se": 8, "wiki": 8})
    chosen = sample(Keys.of(Key.of(e) for e in examples), budget=5, seed=3)
    assert len(chosen) == 5 == len(set(chosen.tolist())) and list(chosen) == sorted(chosen)
    again = sample(Keys.of(Key.of(e) for e in reversed(examples)), budget=5, seed=3)
    assert sorted(examples[i].id for i in chosen) == sorted(examples[-1 - i].id for i in again)  # order-free


# ----------------------------------------------------------------------------------------------------------------
# diversity


def test_kcenter_is_more_diverse_than_random_on_clustered_data():
    vectors, _ = clustered([400, 200, 100, 50, 25, 10, 5, 5], noise=0.3)
    picks = farthest_first(vectors, np.zeros(len(vectors), dtype=np.int64), np.array([40]), seed=0)
    report = diversity(vectors, picks, seed=0)
    chosen, rand = report["selected"], report["random"]
    assert report["n"] == 40 and report["pool"] == len(vectors)
    assert chosen["mean_nearest"] > rand["mean_nearest"] and chosen["mean_pairwise"] > rand["mean_pairwise"]
    assert chosen["coverage_max"] < rand["coverage_max"]  # coverage_mean may go either way (see diversity.py)
    mask = np.zeros(len(vectors), dtype=bool)
    mask[picks] = True
    assert diversity(vectors, mask, seed=0) == report


def test_diversity_of_tiny_sets_and_bad_indices():
    vectors, _ = clustered([3, 3])
    one = diversity(vectors, np.array([2]), seed=0)["selected"]
    assert one["mean_pairwise"] is None and one["mean_nearest"] is None and one["coverage_max"] > 0
    assert diversity(vectors, np.array([], dtype=np.int64), seed=0)["selected"]["coverage_mean"] is None
    with pytest.raises(ValueError, match="distinct rows"):
        diversity(vectors, np.array([1, 1]), seed=0)


def test_kcenter_embeds_a_sample_sized_by_the_budget_and_picks_as_over_all_when_it_is_all():
    examples = [ex("se", i, site=("math", "bio")[i % 2]) for i in range(400)] + pool({"wiki": 300, "full": 50})
    vectors, _ = clustered([150, 150, 150, 100, 200])
    p = plan(Keys.of(Key.of(e) for e in examples), 30, {"se": 20, "wiki": 10}, site_temperature=3.0, mix="equal")
    rows = p.candidates(per_pick=4, seed=0)
    room = {g: int(k) for g, k in enumerate(p.room)}
    per_group = np.bincount(p.groups[rows], minlength=len(room))
    assert all(per_group[g] == min(4 * k, int((p.groups == g).sum())) for g, k in room.items())  # 4 a pick, at most
    assert np.array_equal(rows, p.candidates(per_pick=4, seed=0)) and len(rows) < len(examples) / 4  # seeded, small
    everything = p.candidates(per_pick=0, seed=0)
    assert len(everything) == sum(int((p.groups == g).sum()) for g, k in room.items() if k > 0)
    assert not any(examples[p.order[k]].origin.source == "full" for k in everything)  # the quotas took it all
    ordered = vectors[p.order]
    over_all = select(examples, 30, {"se": 20, "wiki": 10}, site_temperature=3.0, vectors=vectors, seed=5, mix="equal")
    assert split(examples, p.pick(ordered[everything], everything, seed=5), p.reason) == over_all  # no room: no cost
    sampled, left_out = split(examples, p.pick(ordered[rows], rows, seed=5), p.reason)
    assert per_source(sampled) == per_source(over_all[0]) and len(sampled) + len(left_out) == len(examples)
