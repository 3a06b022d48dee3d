"""Selection under a budget: the last step of curate. Seeded, deterministic, and nothing vanishes.

`select_quotas` (variant "lima"): each source named in `quotas` keeps at most its quota, drawn at random; the
sources not named share what is left of the budget in turns (one each, round-robin), so no single big source
takes it all. `sample` (variant "random", the ablation): a seeded sample of `budget`, no filters, no quotas.
Both return (selected, [(example, reason)]) with reason "over_quota" or "over_budget" for every example left out.
Candidates are put in id order before the draw, so the result depends on the seed, not on the input order.
A diversity-aware draw (embeddings, LIMA's site temperature) replaces the random draw here in a later issue.
"""

from __future__ import annotations

import random
from collections import defaultdict

from lessismore.records import Example


def _shuffled(examples: list[Example], rng: random.Random) -> list[Example]:
    pool = sorted(examples, key=lambda e: (e.id, e.origin.source, e.origin.file, e.origin.row))
    rng.shuffle(pool)
    return pool


def _in_input_order(examples: list[Example], chosen: list[Example]) -> list[Example]:
    ids = {id(e) for e in chosen}
    return [e for e in examples if id(e) in ids]


def select_quotas(
    examples: list[Example], budget: int, quotas: dict[str, int], seed: int
) -> tuple[list[Example], list[tuple[Example, str]]]:
    """Per-source caps for the sources in `quotas`, then an even share of what is left for the others."""
    rng = random.Random(seed)
    by_source: dict[str, list[Example]] = defaultdict(list)
    for ex in _shuffled(examples, rng):
        by_source[ex.origin.source].append(ex)
    chosen: list[Example] = []
    left_out: list[tuple[Example, str]] = []
    for source in sorted(set(by_source) & set(quotas)):  # quota sources first, each up to its cap
        pool, cap = by_source.pop(source), quotas[source]
        chosen += pool[:cap]
        left_out += [(ex, "over_quota") for ex in pool[cap:]]
    if len(chosen) > budget:  # quotas add up to more than the budget: a random cut across the quota sources
        rng.shuffle(chosen)
        left_out += [(ex, "over_budget") for ex in chosen[budget:]]
        chosen = chosen[:budget]
    queues = [by_source[s] for s in sorted(by_source)]  # the other sources take turns, one example each
    while any(queues) and len(chosen) < budget:
        for queue in queues:
            if queue and len(chosen) < budget:
                chosen.append(queue.pop(0))
    left_out += [(ex, "over_budget") for queue in queues for ex in queue]
    return _in_input_order(examples, chosen), left_out


def sample(examples: list[Example], budget: int, seed: int) -> tuple[list[Example], list[tuple[Example, str]]]:
    """A seeded random sample of `budget` examples; the rest are left out as "over_budget"."""
    pool = _shuffled(examples, random.Random(seed))
    return _in_input_order(examples, pool[:budget]), [(ex, "over_budget") for ex in pool[budget:]]
