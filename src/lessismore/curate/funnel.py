"""The curate funnel, streamed: batches of validated examples in, the selection out, every drop written as it is
decided (see the package doc for the steps).

Sits in curate/ and runs the steps of the other modules in three phases, so memory does not grow with the input:
1. per batch: scope, rewrites, quality filters, the decontamination verdicts against the dev/test n-gram index and
   the MinHash signatures, both from one split of each message into words (`Prescreen`, row by row, on
   data.engine: in data.workers processes or Ray actors, the index built once in each), then here exact prompt
   dedup against every prompt kept so far (`_Screen.take`: a 16-byte hash a prompt); the survivors are spilled to
   disk with their signatures (spill.py);
2. once: the near-duplicate groups over every survivor's signature (neardup.group: LSH bands grouped across batches,
   union-find); each group's earliest is kept;
3. selection (select.py) over the keys of what is left (ids, origins, sites: not their text), with the embeddings
   of the few prompts farthest-first looks at (read back from the spill's prompt column) and the diversity measure;
   or, for the variants that select by model-based scores, scored.py over the few candidates it scores;
   then the spill is read back once, in order, a row group a job (`ReadBack`, in data.workers processes): the selected
   are returned, every other row dropped with its reason (and, where it was scored, its scores on its record).
Every example not selected becomes a records.Dropped (stage "curate") with its reason and a detail naming its file
and row, so the funnel adds up: candidates = selected + dropped, per source and per step.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from lessismore.curate.decontam import build_index, describe, find_match, words
from lessismore.curate.dedup import DIGEST, PromptDedup, prompt_digest
from lessismore.curate.diversity import diversity as diversity_measure
from lessismore.curate.filters import REASONS, Check, Rules, apply_filters, format_rules
from lessismore.curate.keys import Key, Keys
from lessismore.curate.neardup import Groups, group, minhash_words, word_signatures
from lessismore.curate.scored import Pick, Score, pick_scored
from lessismore.curate.select import plan, sample
from lessismore.curate.spill import Spill, Survivors, read_rows
from lessismore.curate.transforms import rewrite
from lessismore.records import Dropped, Example, Origin, Prompt, from_dict, json_line, records_of, to_dict, to_table
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
    return drop_record(to_dict(example), reason, extra)


def drop_record(record: dict[str, Any], reason: str, extra: str = "") -> Dropped:
    """`drop` of an example as `to_dict` gives it (or as its Arrow row reads, meta decoded): the read-back of the
    spill turns most of a large pool into drops, and builds no Example for them (20 + 27 us a row, measured)."""
    code, _, kept = reason.partition(":")
    response = next((m["content"] for m in reversed(record["messages"]) if m["role"] == "assistant"), "")
    meta, origin = record["meta"], record["origin"]
    facts = [f"response {len(response.strip())} chars"]
    facts += [f"score {meta['score']}"] if "score" in meta else []
    facts += [extra] if extra else [f"kept {kept}"] if kept else []
    detail = f"{origin['file']} row {origin['row']}: {REASONS.get(code, code)} ({', '.join(facts)})"
    return Dropped(stage="curate", reason=reason, origin=Origin(**origin), detail=detail, record=record)


class Line(NamedTuple):
    """A drop as its quarantine line, made where the drop is decided (in a worker, mostly): what travels back to
    the stage is bytes, not a Dropped to unpickle (12 us) and encode there (5 us; measured on 9,078 drops of the
    N=10 pool: at N=50 most of a million rows are dropped, and the stage's process writes them all)."""

    source: str
    code: str  # the reason code (what precedes ":<id>")
    data: bytes  # records.json_line of the Dropped


def line(dropped: Dropped) -> Line:
    return Line(dropped.origin.source, dropped.reason.partition(":")[0], json_line(dropped))


Verdict = tuple[str, str]  # a spill row's (reason, extra) when it is dropped; ("", "") when it is selected
Each = Callable[[Callable[[], Callable[[Any], Any]], Iterable[Any]], Iterable[Any]]  # engine.ordered's shape


def each_here(make: Callable[[], Callable[[Any], Any]], items: Iterable[Any]) -> Iterable[Any]:
    """`make()` over `items` in this process: what `each` is when no engine is given (engine.ordered on one)."""
    return map(make(), items)


class ReadBack:
    """One row group of the spill with its rows' verdicts -> the selected Examples (with their scores) and the
    drops' quarantine lines (from the rows as dicts: only a selected row becomes an Example)."""

    def __call__(self, job: tuple[Any, int, list[Verdict], dict[int, dict]]) -> list[Example | Line]:
        path, group, verdicts, scores = job
        out: list[Example | Line] = []
        for i, (row, (reason, extra)) in enumerate(zip(read_rows(path, group), verdicts, strict=True)):
            if i in scores:
                row["meta"] = {**row["meta"], "scores": scores[i]}
            out.append(line(drop_record(row, reason, extra)) if reason else from_dict(Example, row))
        return out


def curate(
    batches: Iterable[Any],
    prompts: list[Prompt],
    spec: Curate,
    *,
    quotas: dict[str, int],
    seed: int,
    out: Callable[[bytes], None],
    embed: Embed | None = None,
    rules: Mapping[str, Rules] | None = None,
    spill_rows: int = 5000,
    score: Score | None = None,
    prescreen: Each = each_here,
    each: Each = each_here,
) -> CurateResult:
    """Run the funnel over the validated examples, given batch by batch (lists of Examples, or Arrow tables of them:
    records.iter_tables); `prompts` are the dev and test prompts to keep out. Every example not selected is passed
    to `out` as its quarantine line (a records.Dropped as records.json_line writes it), in a fixed order (each
    batch's drops by step, then the near-duplicates, then those selection left out); the selected ones are returned.

    Memory: a few batches, the survivors' keys and prompt hashes (spilled to disk, `spill_rows` rows a shard), the
    prompts that are embedded, and the selection.
    `spec` is params' curate section; `quotas` the train sources' caps (source name -> examples, 0 or absent: none).
    `rules` (`source_rules`): each source's selection rules where they are not curate's own: none for a curated
    source, whose examples are then taken whole within its quota ahead of the mined ones.
    `embed` (texts -> L2-normalised rows; curate.embed.load_embedder) turns on farthest-first selection and the
    diversity measure; without it the draw within each source and site is seeded random. `score` (candidates ->
    {kind: [score]}; scores/scorers.py Scorers) is required by the variants that select by scores. `prescreen(make,
    batches)` runs the per-row steps of each batch, near-duplicate signatures included (engine.pooled: data.workers
    processes, or actors on the Ray cluster), `each(make, jobs)` the read-back of each row group of the spill, a
    local folder (engine.ordered); both here by default.
    """
    if weights_for(spec.variant, spec.scores.weights) and score is None:
        raise ValueError(f"curate.variant {spec.variant} selects by scores: pass `score` (scores.scorers.Scorers)")
    nd = spec.near_dup
    with Spill(spill_rows, nd.num_perm) as spill:
        screen = _Screen(spec, prompts, rules or {}, out, spill.keys)
        for screened in prescreen(partial(Prescreen, spec, prompts, rules or {}), batches):
            spill.add(screen.take(screened))
        groups = group(spill.values(), nd.threshold) if spill.keys else None
        kept = np.flatnonzero(groups.root == np.arange(len(spill.keys))) if groups is not None else np.zeros(0, int)
        source, names = spill.keys.codes("source")
        screen.funnel["near_dup"].update({names[c]: n for c, n in enumerate(np.bincount(source[kept]).tolist()) if n})
        pick = _select(spill, kept, spec, quotas, seed, embed, screen, score)
        selected = screen.write_out(spill, groups, pick, each) if groups is not None else []
    candidates = screen.funnel["validated"]
    assert len(selected) + screen.drops_total() == candidates.total(), "curate lost or duplicated an example"
    funnel = [{"step": k, "n": n.total(), "per_source": dict(sorted(n.items()))} for k, n in screen.funnel.items()]
    sources = sorted(candidates)
    applied = {name: screen.rules_for(name).describe() for name in sources} if screen.filtering else {}
    rewritten = dict(sorted(screen.rewritten.items()))
    stats = screen.index.stats
    return CurateResult(selected, screen.drops, funnel, pick.diversity, rewritten, stats, applied, pick.summary)


@dataclass
class Screened:
    """One batch after the per-row steps that need no other batch (`Prescreen`: in a worker process where
    data.workers says): what each step left per source, the drops so far in order, and the rows that passed the
    filters (`passed`, columnar: no Example object travels back; with their MinHash values), each with its prompt's
    dedup digest and its decontamination drop (None when clean; only the rows exact dedup keeps use it)."""

    steps: dict[str, Counter]  # "validated", "single_source", "filters" -> source -> rows left after it
    formats: dict[str, str]  # source -> its examples' format, as first seen in the batch
    rewritten: Counter  # rewrite rule -> rows it changed
    dropped: list[Line]  # out of scope (single_source), then failed filters, in input order
    passed: Survivors  # rewritten, through the filters, in input order
    digests: np.ndarray  # one a passed row: dedup.prompt_digest (numpy bytes, dedup.DIGEST)
    contaminated: list[Line | None]  # one a passed row


def rules_for(rules: dict[str, Rules], spec: Curate, formats: Mapping[str, str], source: str) -> Rules:
    """A source's selection rules: the caller's, else its format's (remembered in `rules`)."""
    if source not in rules:
        rules[source] = format_rules(spec, formats.get(source, ""))
    return rules[source]


class Prescreen:
    """The per-row steps of a batch that depend on that row alone: scope, rewrites, quality filters, the
    decontamination verdict against the dev/test n-gram index (built once, here or in each worker) and the MinHash
    signature of near-duplicate removal, both from the same split into words. A batch is a list of Examples or an
    Arrow table of them (records.iter_tables: a worker decodes it itself)."""

    def __init__(self, spec: Curate, prompts: list[Prompt], rules: Mapping[str, Rules]) -> None:
        dc = spec.decontam
        self.spec, self.rules, self.formats = spec, dict(rules), {}
        self.filtering = filtering(spec)
        self.index = build_index(prompts, ngram=dc.ngram, min_words=dc.min_words, similarity=dc.short_similarity)
        self._checks_of: dict[str, list[Check]] = {}

    def _checks(self, ex: Example) -> list[Check]:
        source = ex.origin.source
        if source not in self._checks_of:
            self._checks_of[source] = rules_for(self.rules, self.spec, self.formats, source).checks()
        return self._checks_of[source]

    def __call__(self, batch: Any) -> Screened:
        spec = self.spec
        pool = list(batch) if isinstance(batch, list | tuple) else records_of(batch, Example)
        steps, dropped, formats = {"validated": _sources(pool)}, [], {}
        for ex in pool:
            formats.setdefault(ex.origin.source, ex.meta.get("format", ""))
            self.formats.setdefault(ex.origin.source, formats[ex.origin.source])
        if spec.variant == "single_source":
            dropped += [line(drop(ex, "other_source")) for ex in pool if ex.origin.source != spec.single_source]
            pool = [ex for ex in pool if ex.origin.source == spec.single_source]
            steps["single_source"] = _sources(pool)
        pool = [rewrite(ex, se_prompt=spec.se_prompt) for ex in pool]
        rewritten = Counter(r for ex in pool for r in ex.meta.get("rewrites", []))
        if self.filtering:
            verdicts = [(ex, *apply_filters(ex, self._checks(ex))) for ex in pool]
            dropped += [line(drop(ex, reason)) for ex, keep, reason in verdicts if not keep]
            pool = [ex for ex, keep, _ in verdicts if keep]
            steps["filters"] = _sources(pool)
        split = [[words(m.content) for m in ex.messages] for ex in pool]  # decontamination's and MinHash's words
        matches = [find_match(ex, self.index, w) for ex, w in zip(pool, split, strict=True)]
        contaminated = [
            line(drop(ex, f"contaminated:{m.prompt.id}", describe(m))) if m else None
            for ex, m in zip(pool, matches, strict=True)
        ]
        nd = spec.near_dup
        texts = [minhash_words(ex, w) for ex, w in zip(pool, split, strict=True)]
        values = word_signatures(texts, nd.shingle, nd.num_perm)
        passed = Survivors(
            to_table(pool, Example), Keys.of(Key.of(ex) for ex in pool), values, [ex.prompt for ex in pool]
        )
        digests = np.array([prompt_digest(ex) for ex in pool], dtype=DIGEST)
        return Screened(steps, formats, rewritten, dropped, passed, digests, contaminated)


def filtering(spec: Curate) -> bool:
    """Whether the variant applies the quality filters."""
    return spec.variant in ("lima", "single_source", "scored", "ifd_only", "quality_only")


def _sources(pool: list[Example]) -> Counter:
    return Counter(ex.origin.source for ex in pool)


class _Screen:
    """The funnel's state across batches: what needs every batch before it (exact prompt dedup against every
    prompt kept so far), the near-duplicate verdicts, and the counts. Every drop goes to `out` as it is decided, in
    a fixed order: a batch's prescreen drops, its duplicates, its contaminated rows."""

    def __init__(
        self, spec: Curate, prompts: list[Prompt], rules: Mapping[str, Rules], out: Callable, keys: Keys
    ) -> None:
        dc = spec.decontam
        self.spec, self.out, self.rules = spec, out, dict(rules)
        self.filtering = filtering(spec)
        self.index = build_index(prompts, ngram=dc.ngram, min_words=dc.min_words, similarity=dc.short_similarity)
        steps = ["validated", "single_source"] if spec.variant == "single_source" else ["validated"]
        steps += ["filters"] if self.filtering else []
        self.funnel: dict[str, Counter] = {k: Counter() for k in [*steps, "dedup", "decontam", "near_dup", "selected"]}
        self.drops: dict[str, Counter] = {}
        self.rewritten: Counter = Counter()
        self.dedup = PromptDedup()  # the number a kept prompt is remembered under: `key_of`
        self.keys = keys  # the spill's: every row that passed dedup and decontamination, in order
        self.contaminated: list[Key] = []  # the rows dedup kept and decontamination dropped (a duplicate names them)
        self.formats: dict[str, str] = {}  # source -> its examples' format (for the rules of a source not given)

    def rules_for(self, source: str) -> Rules:
        return rules_for(self.rules, self.spec, self.formats, source)

    def key_of(self, number: int) -> Key:
        """The key of the row a kept prompt's number names: its place in the spill, or -2 - its place in
        `contaminated`."""
        return self.keys[number] if number >= 0 else self.contaminated[-2 - number]

    def drop(self, ex: Example, reason: str, extra: str = "") -> None:
        self.emit(line(drop(ex, reason, extra)))

    def emit(self, dropped: Line) -> None:
        self.drops.setdefault(dropped.source, Counter())[dropped.code] += 1
        self.out(dropped.data)

    def drops_total(self) -> int:
        return sum(n.total() for n in self.drops.values())

    def _count(self, step: str, kept: list[Example]) -> None:
        self.funnel[step].update(ex.origin.source for ex in kept)

    def take(self, screened: Screened) -> Survivors:
        """A prescreened batch through exact prompt dedup, then its decontamination verdicts; returns what is left,
        in input order. Only a duplicate's row is made an Example again (for its quarantine record)."""
        for step, n in screened.steps.items():
            self.funnel[step].update(n)
        for source, fmt in screened.formats.items():
            self.formats.setdefault(source, fmt)
        self.rewritten.update(screened.rewritten)
        for dropped in screened.dropped:
            self.emit(dropped)
        passed, sources = screened.passed, screened.passed.keys.column("source")
        owner, first = self.dedup.first(screened.digests)  # the first in input order is kept, over every batch
        new = (owner == -1) & (first == np.arange(len(first)))
        kept = np.flatnonzero(new).tolist()
        clean = [i for i in kept if screened.contaminated[i] is None]
        numbers, at = [], len(self.keys)
        for i in kept:
            if screened.contaminated[i] is None:
                numbers.append(at)
                at += 1
            else:
                numbers.append(-2 - len(self.contaminated))
                self.contaminated.append(passed.keys[i])
        self.dedup.keep(screened.digests[kept], np.array(numbers, dtype=np.int64))
        for i in np.flatnonzero(~new).tolist():  # only a duplicate's row is made an Example again
            key = self.key_of(int(owner[i])) if owner[i] != -1 else passed.keys[int(first[i])]
            ex = records_of(passed.table.slice(i, 1), Example)[0]
            self.drop(ex, f"duplicate_prompt:{key.id}", f"kept {key.id}: {key.file} row {key.row}")
        self.funnel["dedup"].update(sources[i] for i in kept)
        for i in kept:
            if (bad := screened.contaminated[i]) is not None:
                self.emit(bad)
        self.funnel["decontam"].update(sources[i] for i in clean)
        survivors = passed.take(clean)
        self.keys.extend(survivors.keys)
        return survivors

    def write_out(self, spill: Spill, groups: Groups, pick: Pick, each: Each) -> list[Example]:
        """The spilled survivors read back once, in order, a row group of the spill a job (`each`: in worker
        processes where data.workers says): the `pick.chosen` rows (positions in the spill) are returned; each
        near-duplicate is dropped naming its group's kept row, each row selection left out with `pick.why(k)`. A
        row that was scored carries its scores (meta "scores"). The verdicts are decided here, from the keys; a job
        turns its rows and verdicts into Examples and quarantine lines."""
        picked, selected = set(pick.chosen.tolist()), []

        def verdicts(rows: range) -> list[Verdict]:
            at = np.arange(rows.start, rows.stop)
            root, link = groups.root[at], groups.link[at]
            near = np.flatnonzero(root != at)  # near-duplicates, each named after its group's kept row
            kept_id, file, row = (spill.keys.column(name, root[near]) for name in ("id", "file", "row"))
            link_id = spill.keys.column("id", link[near])
            out: dict[int, Verdict] = {}
            for n, i in enumerate(near.tolist()):
                extra = f"kept {kept_id[n]}: {file[n]} row {row[n]}; estimated Jaccard {groups.similarity[at[i]]:.2f}"
                extra += f" with {link_id[n]}" + (" in its group" if link[i] != root[i] else "")
                out[i] = (f"near_duplicate:{kept_id[n]}", extra)
            return [out.get(i) or (("", "") if k in picked else pick.why(k)) for i, k in enumerate(rows)]

        jobs = (  # a row group a job: a few of them in flight hold a few thousand rows, whatever the input's size
            (path, group, verdicts(rows), {k - rows.start: pick.scores[k] for k in rows if k in pick.scores})
            for path, group, rows in spill.groups()
        )
        for rows in each(ReadBack, jobs):
            for rec in rows:
                if isinstance(rec, Example):
                    selected.append(rec)
                else:
                    self.emit(rec)
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
    keys = spill.keys.take(kept)
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
        return p.reason(int(np.searchsorted(kept, k))), ""

    if vectors is None or not len(chosen):
        return Pick(kept[chosen], why, {}, None, {})
    mask = np.isin(np.asarray(p.order, dtype=np.int64)[rows], chosen)
    return Pick(kept[chosen], why, {}, diversity_measure(vectors, np.flatnonzero(mask), seed=seed), {})
