"""The curate funnel, streamed: batches of validated examples in, the selection out, every drop written as it is
decided (see the package doc for the steps).

Sits in curate/ and runs the steps of the other modules in three phases, so memory does not grow with the input:
1. per batch (`_Screen.batch`): scope, rewrites, quality filters, exact prompt dedup against every prompt kept so far
   (a 16-byte hash a prompt), decontamination against the dev/test n-gram index built once; the survivors' MinHash
   signatures are computed (by `sign`, on data.engine) and the survivors spilled to disk (spill.py);
2. once: the near-duplicate groups over every survivor's signature (neardup.group: LSH bands grouped across batches,
   union-find); each group's earliest is kept;
3. selection (select.py) over the keys of what is left (ids, origins, sites: not their text), with the embeddings
   of the few prompts farthest-first looks at (read back from the spill's prompt column) and the diversity measure;
   or, for the variants that select by model-based scores, scored.py over the few candidates it scores;
   then the spill is read back once, in order: the selected are returned, every other row dropped with its reason
   (and, where it was scored, its scores on its record).
Every example not selected becomes a records.Dropped (stage "curate") with its reason and a detail naming its file
and row, so the funnel adds up: candidates = selected + dropped, per source and per step.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from lessismore.curate.decontam import build_index, describe_match, remove_contaminated
from lessismore.curate.dedup import PromptDedup
from lessismore.curate.diversity import diversity as diversity_measure
from lessismore.curate.filters import REASONS, Check, Rules, apply_filters, format_rules
from lessismore.curate.neardup import Groups, Sign, group, minhash_text, signatures
from lessismore.curate.scored import Pick, Score, pick_scored
from lessismore.curate.select import Key, plan, sample
from lessismore.curate.spill import Spill
from lessismore.curate.transforms import rewrite
from lessismore.records import Dropped, Example, Prompt, to_dict
from lessismore.scores.scorers import weights_for

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
    scores: dict[str, Any] = field(default_factory=dict)  # the scored variants: distributions, extremes (scored.py)

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


def _signed(rows: list[tuple[Example, Key]], sign: Sign) -> tuple[list[tuple[Example, Key]], np.ndarray]:
    return rows, sign([minhash_text(ex) for ex, _ in rows])


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
    score: Score | None = None,
) -> CurateResult:
    """Run the funnel over the validated examples, given batch by batch; `prompts` are the dev and test prompts to
    keep out. Every example not selected is passed to `out` as a Dropped, in a fixed order (each batch's drops by
    step, then the near-duplicates, then those selection left out); the selected ones are returned.

    Memory: a batch, the survivors' keys and prompt hashes (spilled to disk, `spill_rows` rows a shard: also the
    rows a `sign` call gets), the prompts that are embedded, and the selection.
    `spec` is params' curate section; `quotas` the train sources' caps (source name -> examples, 0 or absent: none).
    `rules` (`source_rules`): each source's selection rules where they are not curate's own: none for a curated
    source, whose examples are then taken whole within its quota ahead of the mined ones.
    `embed` (texts -> L2-normalised rows; curate.embed.load_embedder) turns on farthest-first selection and the
    diversity measure; without it the draw within each source and site is seeded random. `sign` (texts -> MinHash
    values; curate.on_engine.signer) computes near-duplicate signatures, here by default. `score` (candidates ->
    {kind: [score]}; scores/scorers.py Scorers) is required by the variants that select by scores.
    """
    if weights_for(spec.variant, spec.scores.weights) and score is None:
        raise ValueError(f"curate.variant {spec.variant} selects by scores: pass `score` (scores.scorers.Scorers)")
    nd = spec.near_dup
    sign = sign or partial(signatures, shingle=nd.shingle, num_perm=nd.num_perm)
    screen = _Screen(spec, prompts, rules or {}, out)
    with Spill(spill_rows, nd.num_perm) as spill, ThreadPoolExecutor(1, "curate-sign") as signing:
        # a full buffer is signed on a thread (which waits on data.engine's workers) while the next is screened;
        # the spill takes the buffers in order, each when its signatures are there: at most two buffers are held
        buffer: list[tuple[Example, Key]] = []
        signed: Future | None = None
        for batch in batches:
            buffer += screen.batch(batch)
            if len(buffer) >= spill_rows:
                if signed is not None:
                    spill.add(*signed.result())
                signed = signing.submit(_signed, buffer, sign)
                buffer = []
        if signed is not None:
            spill.add(*signed.result())
        spill.add(*_signed(buffer, sign))
        groups = group(spill.values(), nd.threshold) if spill.keys else None
        kept = np.flatnonzero(groups.root == np.arange(len(spill.keys))) if groups is not None else np.zeros(0, int)
        screen.funnel["near_dup"].update(spill.keys[k].source for k in kept.tolist())
        pick = _select(spill, kept, spec, quotas, seed, embed, screen, score)
        selected = screen.write_out(spill, groups, pick)
    candidates = screen.funnel["validated"]
    assert len(selected) + screen.drops_total() == candidates.total(), "curate lost or duplicated an example"
    funnel = [{"step": k, "n": n.total(), "per_source": dict(sorted(n.items()))} for k, n in screen.funnel.items()]
    sources = sorted(candidates)
    applied = {name: screen.rules_for(name).describe() for name in sources} if screen.filtering else {}
    rewritten = dict(sorted(screen.rewritten.items()))
    stats = screen.index.stats
    return CurateResult(selected, screen.drops, funnel, pick.diversity, rewritten, stats, applied, pick.summary)


class _Screen:
    """The funnel's state across batches: the per-row steps of one batch at a time (scope, rewrites, filters,
    exact dedup against every prompt kept so far, decontamination against the shared n-gram index), the
    near-duplicate verdicts, and the counts. Every drop goes to `out` as it is decided."""

    def __init__(self, spec: Curate, prompts: list[Prompt], rules: Mapping[str, Rules], out: Callable) -> None:
        dc = spec.decontam
        self.spec, self.out, self.rules = spec, out, dict(rules)
        self.filtering = spec.variant in ("lima", "single_source", "scored", "ifd_only", "quality_only")
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

    def batch(self, batch: Sequence[Example]) -> list[tuple[Example, Key]]:
        """One batch through the per-row steps; returns what is left, in input order, with each one's key."""
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
        kept, keys = [], {}
        for ex in pool:  # exact prompt dedup: the first in input order is kept, over every batch
            key = Key.of(ex)  # one object for the dedup memory and the spill's selection keys
            if (first := self.dedup.first(ex, key)) is None:
                kept.append(ex)
                keys[id(ex)] = key
            else:
                self.drop(ex, f"duplicate_prompt:{first.id}", f"kept {first.id}: {first.file} row {first.row}")
        self._count("dedup", kept)
        pool, contaminated = remove_contaminated(kept, self.index)
        for ex, reason in contaminated:
            self.drop(ex, reason, describe_match(ex, self.index))
        self._count("decontam", pool)
        return [(ex, keys[id(ex)]) for ex in pool]

    def write_out(self, spill: Spill, groups: Groups | None, pick: Pick) -> list[Example]:
        """The spilled survivors read back once, in order: the `pick.chosen` rows (positions in the spill) are
        returned; each near-duplicate is dropped naming its group's kept row, each row selection left out with
        `pick.why(k)`. A row that was scored carries its scores (meta "scores")."""
        picked, selected = set(pick.chosen.tolist()), []
        for k, ex in enumerate(spill.examples()):
            assert groups is not None and ex.id == spill.keys[k].id
            if k in pick.scores:
                ex = replace(ex, meta={**ex.meta, "scores": pick.scores[k]})
            root = int(groups.root[k])
            if root == k and k in picked:
                selected.append(ex)
                continue
            if root == k:
                self.drop(ex, *pick.why(k))
                continue
            link, sim = int(groups.link[k]), float(groups.similarity[k])
            kept_id = spill.keys[root].id
            extra = f"kept {kept_id}: {spill.where(root)}; estimated Jaccard {sim:.2f} with {spill.keys[link].id}"
            self.drop(ex, f"near_duplicate:{kept_id}", extra + (" in its group" if link != root else ""))
        self._count("selected", selected)
        return selected


def _select(
    spill: Spill,
    kept: np.ndarray,
    spec: Curate,
    quotas: Mapping[str, int],
    seed: int,
    embed: Embed | None,
    screen: _Screen,
    score: Score | None,
) -> Pick:
    """Selection under the budget over the `kept` rows of the spill (its positions, ascending), from their keys:
    the chosen positions, why a position was left out, the diversity measure over the candidates that were
    embedded (and, for the scored variants, the scores). Only the prompts farthest-first looks at are read back."""
    keys = [spill.keys[k] for k in kept.tolist()]
    if spec.variant == "random":
        return Pick(kept[sample(keys, spec.budget, seed)], lambda k: ("over_budget", ""), {}, None, {})
    curated = frozenset(name for name, r in screen.rules.items() if r.curated)
    first = curated if screen.filtering else frozenset()
    p = plan(keys, spec.budget, quotas, site_temperature=spec.site_temperature, first=first, mix=spec.mix)
    if score is not None and weights_for(spec.variant, spec.scores.weights):
        return pick_scored(spill, kept, p, spec, seed=seed, score=score, embed=embed, curated=first)
    rows = p.candidates(spec.kcenter_sample, seed) if embed is not None else None
    vectors = None
    if rows is not None and len(rows):
        at = kept[np.asarray(p.order, dtype=np.int64)[rows]]  # the embedded rows' positions in the spill
        prompts = dict(zip(np.sort(at).tolist(), spill.prompts(np.sort(at)), strict=True))
        vectors = embed([prompts[k] for k in at.tolist()])
    chosen = p.pick(vectors, rows, seed)

    def why(k: int) -> tuple[str, str]:
        return ("over_quota" if spill.keys[k].source in p.full else "over_budget"), ""

    if vectors is None or not len(chosen):
        return Pick(kept[chosen], why, {}, None, {})
    mask = np.isin(np.asarray(p.order, dtype=np.int64)[rows], chosen)
    return Pick(kept[chosen], why, {}, diversity_measure(vectors, np.flatnonzero(mask), seed=seed), {})
