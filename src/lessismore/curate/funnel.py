"""The curate funnel, streamed: batches of validated examples in, the selection out, every drop written as it is
decided (see the package doc for the steps).

Sits in curate/ and runs the steps of the other modules in three phases, so memory does not grow with the input:
1. per batch (`_Screen.batch`): scope, rewrites, quality filters, exact prompt dedup against every prompt kept so far
   (a 16-byte hash a prompt), decontamination against the dev/test n-gram index built once; the survivors' MinHash
   signatures are computed (by `sign`, on data.engine) and the survivors spilled to disk (spill.py);
2. once: the near-duplicate groups over every survivor's signature (neardup.group: LSH bands grouped across batches,
   union-find), then the survivors read back in order, each group's earliest kept;
3. selection (select.py) over what is left, with the embeddings and the diversity measure.
Every example not selected becomes a records.Dropped (stage "curate") with its reason and a detail naming its file
and row, so the funnel adds up: candidates = selected + dropped, per source and per step.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from lessismore.curate.decontam import build_index, describe_match, remove_contaminated
from lessismore.curate.dedup import PromptDedup
from lessismore.curate.diversity import diversity as diversity_measure
from lessismore.curate.filters import REASONS, Check, Rules, apply_filters, format_rules
from lessismore.curate.neardup import Groups, Sign, group, minhash_text, signatures
from lessismore.curate.select import plan, sample
from lessismore.curate.spill import Spill
from lessismore.curate.transforms import rewrite
from lessismore.records import Dropped, Example, Prompt, to_dict

if TYPE_CHECKING:
    from lessismore.config import Curate

Embed = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class CurateResult:
    selected: list[Example]  # in input order
    drops: dict[str, Counter]  # source -> reason code -> examples dropped (each one written with its detail)
    funnel: list[dict[str, Any]]  # [{"step", "n", "per_source": {source: n}}]: what is left after each step
    diversity: dict[str, Any] | None = None  # diversity.diversity() of the selection vs random; None unembedded
    rewritten: dict[str, int] = field(default_factory=dict)  # rewrite rule -> examples it changed
    decontam: dict[str, Any] = field(default_factory=dict)  # the n-gram index's stats (prompts too short to match)
    rules: dict[str, str] = field(default_factory=dict)  # source -> the selection rules that applied to it

    @property
    def candidates(self) -> int:
        return self.funnel[0]["n"]

    def per_source(self) -> dict[str, dict[str, int]]:
        selected = Counter(e.origin.source for e in self.selected)
        candidates = selected + Counter({s: n.total() for s, n in self.drops.items()})
        return {s: {"candidates": candidates[s], "selected": selected[s]} for s in sorted(candidates)}

    def dropped_by_reason(self) -> dict[str, int]:
        """Counts per reason code ("duplicate_prompt:<id>" is counted as "duplicate_prompt")."""
        return dict(sorted(sum(self.drops.values(), Counter()).items()))


def drop(example: Example, reason: str, extra: str = "") -> Dropped:
    """A curate quarantine entry: the reason code plus a detail naming file, row and what to change."""
    code, _, kept = reason.partition(":")
    facts = [f"response {len(example.response.strip())} chars"]
    facts += [f"score {example.meta['score']}"] if "score" in example.meta else []
    facts += [extra] if extra else [f"kept {kept}"] if kept else []
    detail = f"{example.origin.file} row {example.origin.row}: {REASONS.get(code, code)} ({', '.join(facts)})"
    return Dropped(stage="curate", reason=reason, origin=example.origin, detail=detail, record=to_dict(example))


def curate(
    batches: Iterable[Sequence[Example]],
    prompts: list[Prompt],
    spec: Curate,
    *,
    quotas: dict[str, int],
    seed: int,
    out: Callable[[Dropped], None],
    embed: Embed | None = None,
    sign: Sign | None = None,
    rules: Mapping[str, Rules] | None = None,
    spill_rows: int = 5000,
) -> CurateResult:
    """Run the funnel over the validated examples, given batch by batch; `prompts` are the dev and test prompts to
    keep out. Every example not selected is passed to `out` as a Dropped, in a fixed order (each batch's drops by
    step, then the near-duplicates, then those selection left out); the selected ones are returned.

    Memory: a batch, the survivors' ids and prompt hashes, and after the near-duplicate groups the examples that
    are left (read back from a spill on disk, `spill_rows` rows a shard; also the rows a `sign` call gets).
    `spec` is params' curate section; `quotas` the train sources' caps (source name -> examples, 0 or absent: none).
    `rules` (`source_rules`): each source's selection rules where they are not curate's own: none for a curated
    source, whose examples are then taken whole within its quota ahead of the mined ones.
    `embed` (texts -> L2-normalised rows; curate.embed.load_embedder) turns on farthest-first selection and the
    diversity measure; without it the draw within each source and site is seeded random. `sign` (texts -> MinHash
    values; curate.on_engine.signer) computes near-duplicate signatures, here by default.
    """
    nd = spec.near_dup
    sign = sign or partial(signatures, shingle=nd.shingle, num_perm=nd.num_perm)
    screen = _Screen(spec, prompts, rules or {}, out)
    with Spill(spill_rows, nd.num_perm) as spill:
        buffer: list[Example] = []
        for batch in batches:
            buffer += screen.batch(batch)
            if len(buffer) >= spill_rows:
                spill.add(buffer, sign([minhash_text(ex) for ex in buffer]))
                buffer = []
        spill.add(buffer, sign([minhash_text(ex) for ex in buffer]))
        groups = group(spill.values(), nd.threshold) if spill.ids else None
        pool = screen.near_dups(spill, groups)
    selected, measure = _select(pool, spec, quotas, seed, embed, screen)
    candidates = screen.funnel["validated"]
    assert len(selected) + screen.drops_total() == candidates.total(), "curate lost or duplicated an example"
    funnel = [{"step": k, "n": n.total(), "per_source": dict(sorted(n.items()))} for k, n in screen.funnel.items()]
    sources = sorted(candidates)
    applied = {name: screen.rules_for(name).describe() for name in sources} if screen.filtering else {}
    rewritten = dict(sorted(screen.rewritten.items()))
    return CurateResult(selected, screen.drops, funnel, measure, rewritten, screen.index.stats, applied)


class _Screen:
    """The funnel's state across batches: the per-row steps of one batch at a time (scope, rewrites, filters,
    exact dedup against every prompt kept so far, decontamination against the shared n-gram index), the
    near-duplicate verdicts, and the counts. Every drop goes to `out` as it is decided."""

    def __init__(self, spec: Curate, prompts: list[Prompt], rules: Mapping[str, Rules], out: Callable) -> None:
        dc = spec.decontam
        self.spec, self.out, self.rules = spec, out, dict(rules)
        self.filtering = spec.variant in ("lima", "single_source")
        self.index = build_index(prompts, ngram=dc.ngram, min_words=dc.min_words, similarity=dc.short_similarity)
        steps = ["validated", "single_source"] if spec.variant == "single_source" else ["validated"]
        steps += ["filters"] if self.filtering else []
        self.funnel: dict[str, Counter] = {k: Counter() for k in [*steps, "dedup", "decontam", "near_dup", "selected"]}
        self.drops: dict[str, Counter] = {}
        self.rewritten: Counter = Counter()
        self.dedup = PromptDedup()
        self.formats: dict[str, str] = {}  # source -> its examples' format (for the rules of a source not given)
        self._checks_of: dict[str, list[Check]] = {}

    def rules_for(self, source: str) -> Rules:
        if source not in self.rules:  # a source the caller gave no rules for gets its format's
            self.rules[source] = format_rules(self.spec, self.formats.get(source, ""))
        return self.rules[source]

    def _checks(self, ex: Example) -> list[Check]:
        source = ex.origin.source
        if source not in self._checks_of:
            self._checks_of[source] = self.rules_for(source).checks()
        return self._checks_of[source]

    def drop(self, ex: Example, reason: str, extra: str = "") -> None:
        self.drops.setdefault(ex.origin.source, Counter())[reason.split(":")[0]] += 1
        self.out(drop(ex, reason, extra))

    def drops_total(self) -> int:
        return sum(n.total() for n in self.drops.values())

    def _count(self, step: str, kept: list[Example]) -> None:
        self.funnel[step].update(ex.origin.source for ex in kept)

    def batch(self, batch: Sequence[Example]) -> list[Example]:
        """One batch through the per-row steps; returns what is left, in input order."""
        spec, pool = self.spec, list(batch)
        self._count("validated", pool)
        for ex in pool:
            self.formats.setdefault(ex.origin.source, ex.meta.get("format", ""))
        if spec.variant == "single_source":
            for ex in pool:
                if ex.origin.source != spec.single_source:
                    self.drop(ex, "other_source")
            pool = [ex for ex in pool if ex.origin.source == spec.single_source]
            self._count("single_source", pool)
        pool = [rewrite(ex, se_prompt=spec.se_prompt) for ex in pool]
        self.rewritten.update(r for ex in pool for r in ex.meta.get("rewrites", []))
        if self.filtering:
            verdicts = [(ex, *apply_filters(ex, self._checks(ex))) for ex in pool]
            for ex, keep, reason in verdicts:
                if not keep:
                    self.drop(ex, reason)
            pool = [ex for ex, keep, _ in verdicts if keep]
            self._count("filters", pool)
        kept = []
        for ex in pool:  # exact prompt dedup: the first in input order is kept, over every batch
            if (first := self.dedup.first(ex)) is None:
                kept.append(ex)
            else:
                self.drop(ex, f"duplicate_prompt:{first[0]}", f"kept {first[0]}: {first[1]}")
        self._count("dedup", kept)
        pool, contaminated = remove_contaminated(kept, self.index)
        for ex, reason in contaminated:
            self.drop(ex, reason, describe_match(ex, self.index))
        self._count("decontam", pool)
        return pool

    def near_dups(self, spill: Spill, groups: Groups | None) -> list[Example]:
        """The spilled survivors, read back in order: each group's earliest kept, the others dropped naming it."""
        pool = []
        for k, ex in enumerate(spill.examples()):
            assert groups is not None and ex.id == spill.ids[k]
            root = int(groups.root[k])
            if root == k:
                pool.append(ex)
                continue
            link, sim = int(groups.link[k]), float(groups.similarity[k])
            extra = f"kept {spill.ids[root]}: {spill.where[root]}"
            extra += f"; estimated Jaccard {sim:.2f} with {spill.ids[link]}" + (
                " in its group" if link != root else ""
            )
            self.drop(ex, f"near_duplicate:{spill.ids[root]}", extra)
        self._count("near_dup", pool)
        return pool


def _select(
    pool: list[Example], spec: Curate, quotas: Mapping[str, int], seed: int, embed: Embed | None, screen: _Screen
) -> tuple[list[Example], dict[str, Any] | None]:
    """Selection under the budget over the examples left; (selected in input order, the diversity measure over the
    candidates that were embedded)."""
    vectors = None
    if spec.variant == "random":
        selected, left_out = sample(pool, spec.budget, seed)
    else:
        curated = frozenset(name for name, r in screen.rules.items() if r.curated)
        first = curated if screen.filtering else frozenset()
        p = plan(pool, spec.budget, quotas, site_temperature=spec.site_temperature, first=first, mix=spec.mix)
        rows = p.candidates(spec.kcenter_sample, seed) if embed is not None else None
        if rows is not None and len(rows):
            vectors = embed([pool[p.order[k]].prompt for k in rows.tolist()])
        selected, left_out = p.pick(vectors, rows, seed)
    for ex, reason in left_out:
        screen.drop(ex, reason)
    screen._count("selected", selected)
    if vectors is None or not selected:
        return selected, None
    chosen = {id(ex) for ex in selected}
    mask = np.array([id(pool[p.order[k]]) in chosen for k in rows.tolist()])
    return selected, diversity_measure(vectors, np.flatnonzero(mask), seed=seed)
