"""Human judging: what the annotate page shows, and to whom (#7).

Sits beside judge/: it reads the same inputs (test Prompts, outputs/responses/*.jsonl) and its export,
outputs/human_judgments.jsonl, feeds the same statistics (judge/agreement.py). This module is pure: it turns
prompts and responses into Items (a pairwise item is the candidate's and one baseline's answer to one prompt, paired
by judge.protocol.build_pairs; an absolute item is one model's answer, graded excellent / pass / fail as in LIMA
Figure 3), and decides each annotator's queue and which side the candidate is shown on. store.py keeps the
submissions in SQLite; app.py is the web page.

Every choice is a content hash (records.content_id) of the seed and the item key, so it is reproducible and needs no
random state: the first `overlap` items of the seeded order go to every annotator (human-human agreement is measured
on them), the rest are split between the annotators.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from hashlib import sha256
from json.encoder import encode_basestring
from pathlib import Path
from typing import Literal

from lessismore.judge.protocol import build_pairs
from lessismore.records import Prompt, Response, content_id

Kind = Literal["pairwise", "absolute"]
KINDS: tuple[str, ...] = ("pairwise", "absolute")
PAIRWISE_LABELS = ("a", "b", "tie")  # as shown: "A is better", "B is better", "Neither is significantly better"
GRADES = ("excellent", "pass", "fail")  # LIMA Figure 3


@dataclass(frozen=True)
class Item:
    """One thing to judge. Pairwise: answers = (candidate, baseline); absolute: answers = (the one answer,)."""

    kind: Kind
    prompt: Prompt
    answers: tuple[Response, ...]

    @property
    def key(self) -> str:
        """Stable across runs: the kind and the content ids of the prompt and the answers."""
        return content_id(self.kind, self.prompt.id, [r.id for r in self.answers])


def build_items(
    prompts: Iterable[Prompt], responses: Iterable[Response], candidate: str, baselines: Sequence[str]
) -> tuple[list[Item], dict[str, int]]:
    """Pairwise items (candidate vs each baseline) and absolute items (every answer of those models to a prompt).

    Also returns how many prompts each baseline could not be paired on (an answer missing on either side).
    """
    prompts, responses = list(prompts), list(responses)
    pairs, unpaired = build_pairs(prompts, responses, candidate, baselines)
    items = [Item("pairwise", p.prompt, (p.candidate, p.baseline)) for p in pairs]
    by_id = {p.id: p for p in prompts}
    models = (candidate, *baselines)
    graded = sorted((r for r in responses if r.model in models and r.prompt_id in by_id), key=lambda r: r.id)
    items += [Item("absolute", by_id[r.prompt_id], (r,)) for r in graded]
    return items, unpaired


def load_items(
    responses_dir: str | Path, prompts_path: str | Path, candidate: str, baselines: Sequence[str]
) -> tuple[list[Item], dict[str, int]]:
    """`build_items` over outputs/responses/*.jsonl and the test prompts (data/validated/prompts.parquet)."""
    from lessismore import records

    prompts = [p for p in records.read_parquet(prompts_path, Prompt) if p.split == "test"]
    responses = [r for f in sorted(Path(responses_dir).glob("*.jsonl")) for r in records.read_jsonl(f, Response)]
    return build_items(prompts, responses, candidate, baselines)


def seeded_order(keys: Iterable[str], seed: int, *salt: str) -> list[str]:
    """The keys sorted by content_id(seed, *salt, key): a shuffle that any run reproduces.

    >>> seeded_order(["x", "y", "z"], 0) == seeded_order(["z", "x", "y"], 0)
    True
    >>> seeded_order(["x", "é", 'q"'], 3, "ann") == sorted(["x", "é", 'q"'], key=lambda k: content_id(3, "ann", k))
    True
    """
    # content_id's own JSON, its shared head written once: 4x faster (the page orders a few thousand keys for each
    # annotator it meets: 18 ms each way, 4 ms this way; #7 load test)
    head = json.dumps([seed, *salt], sort_keys=True, ensure_ascii=False, separators=(",", ":"))[:-1]
    return sorted(set(keys), key=lambda k: sha256(f"{head},{encode_basestring(k)}]".encode()).hexdigest()[:16])


def queue(
    keys: Iterable[str],
    annotator: str,
    *,
    overlap: int,
    seed: int,
    roster: Sequence[str] = (),
    taken_by_others: Collection[str] = (),
) -> list[str]:
    """The items `annotator` judges, in the order shown: the shared overlap first, then their own share.

    The first `overlap` items of the seeded order go to everyone. With a roster, item i of the rest goes to
    roster[i % len(roster)] (a fixed split); without one, the rest is first come, first served: an item another
    annotator claimed (`taken_by_others`, store.py's claims) is not offered again. Each annotator sees their items in
    their own seeded order.

    >>> keys = [f"k{i}" for i in range(10)]
    >>> ann, bob = (queue(keys, n, overlap=4, seed=1, roster=["ann", "bob"]) for n in ("ann", "bob"))
    >>> len(set(ann) & set(bob)), len(ann) + len(bob) - 4, sorted(set(ann) | set(bob)) == sorted(keys)
    (4, 10, True)
    """
    rest, shared, own = _orders(frozenset(keys), seed, overlap, annotator)
    if roster:
        mine = {k for i, k in enumerate(rest) if roster[i % len(roster)] == annotator}
        return [*shared, *(k for k in own if k in mine)]
    taken = taken_by_others if isinstance(taken_by_others, set | frozenset) else set(taken_by_others)
    return [*shared, *(k for k in own if k not in taken)]  # the same order as seeded_order(mine, ...): a filter


@lru_cache(maxsize=1024)
def _orders(keys: frozenset[str], seed: int, overlap: int, annotator: str) -> tuple[tuple[str, ...], ...]:
    """(the rest after the overlap, the overlap in `annotator`'s order, the rest in their order), remembered.

    The page computes a queue on every request, and hashing thousands of keys each time (5 us a key) cost a request
    15 ms (#7 load test). Pass the same frozenset each time and the lookup is free: its hash is kept, and equality
    is identity. One entry per annotator.
    """
    order = _order(keys, seed)
    rest = order[overlap:]
    return (
        rest,
        tuple(seeded_order(order[:overlap], seed, annotator)),
        tuple(seeded_order(rest, seed, annotator, "own")),
    )


@lru_cache(maxsize=16)
def _order(keys: frozenset[str], seed: int) -> tuple[str, ...]:
    return tuple(seeded_order(keys, seed))


def candidate_side(annotator: str, key: str, seed: int) -> Literal["ab", "ba"]:
    """Where the candidate is shown: "ab" as A, "ba" as B; a fair coin per (annotator, item), fixed by content.

    >>> candidate_side("ann", "k1", 0) == candidate_side("ann", "k1", 0)
    True
    >>> sorted({candidate_side("ann", f"k{i}", 0) for i in range(20)})
    ['ab', 'ba']
    """
    return "ab" if int(content_id(seed, "side", annotator, key), 16) % 2 == 0 else "ba"
