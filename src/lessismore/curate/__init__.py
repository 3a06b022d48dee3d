"""curate: validated Examples -> the small training set (LIMA: 1,000 examples). The stage after validate.

The funnel, one step at a time, each returning (kept, [(example, reason)]):
  scope (variant single_source) -> rewrites (transforms.py: LIMA's wikiHow and Stack Exchange prompt edits)
  -> quality filters (filters.py; off for the random and unfiltered ablations) -> exact prompt dedup (dedup.py)
  -> decontamination against every dev and test prompt (decontam.py) -> near-duplicates (neardup.py, MinHash LSH)
  -> selection under the budget: per-source quotas, sites by temperature, farthest-first on embeddings (select.py);
     variant random: a seeded sample of the budget instead.
Dedup and decontamination run in every variant: they keep the evaluation honest, they are not quality rules.
Every example not selected becomes a records.Dropped (stage "curate") with its reason and a detail naming its file
and row, so the funnel adds up: candidates = selected + dropped, per source and per step.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from lessismore.curate.decontam import build_index, describe_match, remove_contaminated
from lessismore.curate.dedup import dedup_prompts
from lessismore.curate.diversity import diversity as diversity_measure
from lessismore.curate.filters import REASONS, Rules, apply_filters
from lessismore.curate.neardup import Sign, near_duplicates
from lessismore.curate.select import sample, select
from lessismore.curate.transforms import rewrite
from lessismore.records import Dropped, Example, Prompt, to_dict

if TYPE_CHECKING:
    from lessismore.config import Curate, Source, SourceRules

__all__ = [
    "CurateResult",
    "curate",
    "curate_metrics",
    "describe_shortfall",
    "drop",
    "format_rules",
    "shortfall",
    "source_rules",
]

Embed = Callable[[list[str]], np.ndarray]
Variant = Literal["lima", "random", "unfiltered", "single_source"]


@dataclass(frozen=True)
class CurateResult:
    selected: list[Example]  # in input order
    dropped: list[Dropped]  # every candidate not selected, with its reason
    funnel: list[dict[str, Any]]  # [{"step", "n", "per_source": {source: n}}]: what is left after each step
    diversity: dict[str, Any] | None = None  # diversity.diversity() of the selection vs random; None unembedded
    rewritten: dict[str, int] = field(default_factory=dict)  # rewrite rule -> examples it changed
    decontam: dict[str, Any] = field(default_factory=dict)  # the n-gram index's stats (prompts too short to match)
    rules: dict[str, str] = field(default_factory=dict)  # source -> the selection rules that applied to it

    def per_source(self) -> dict[str, dict[str, int]]:
        candidates = Counter(e.origin.source for e in self.selected) + Counter(d.origin.source for d in self.dropped)
        selected = Counter(e.origin.source for e in self.selected)
        return {s: {"candidates": candidates[s], "selected": selected[s]} for s in sorted(candidates)}

    def dropped_by_reason(self) -> dict[str, int]:
        """Counts per reason code; "duplicate_prompt:<id>" is counted as "duplicate_prompt"."""
        return dict(sorted(Counter(d.reason.split(":")[0] for d in self.dropped).items()))


def drop(example: Example, reason: str, extra: str = "") -> Dropped:
    """A curate quarantine entry: the reason code plus a detail naming file, row and what to change."""
    code, _, kept = reason.partition(":")
    facts = [f"response {len(example.response.strip())} chars"]
    facts += [f"score {example.meta['score']}"] if "score" in example.meta else []
    facts += [extra] if extra else [f"kept {kept}"] if kept else []
    detail = f"{example.origin.file} row {example.origin.row}: {REASONS.get(code, code)} ({', '.join(facts)})"
    return Dropped(stage="curate", reason=reason, origin=example.origin, detail=detail, record=to_dict(example))


def _step(name: str, kept: list[Example]) -> dict[str, Any]:
    return {"step": name, "n": len(kept), "per_source": dict(sorted(Counter(e.origin.source for e in kept).items()))}


def curate(
    examples: list[Example],
    prompts: list[Prompt],
    spec: Curate,
    *,
    quotas: dict[str, int],
    seed: int,
    embed: Embed | None = None,
    sign: Sign | None = None,
    rules: Mapping[str, Rules] | None = None,
) -> CurateResult:
    """Run the funnel over `examples` (the validated ones); `prompts` are the dev and test prompts to keep out.

    `spec` is params' curate section; `quotas` the train sources' caps (source name -> examples, 0 or absent: none).
    `rules` (`source_rules`): each source's selection rules where they are not curate's own: none for a curated
    source, whose examples are then taken whole within its quota ahead of the mined ones.
    `embed` (texts -> L2-normalised rows; curate.embed.load_embedder) turns on farthest-first selection and the
    diversity measure; without it the draw within each source and site is seeded random. `sign` (texts -> MinHash
    values; curate.on_engine.signer) computes near-duplicate signatures, here by default.
    """
    variant, budget, nd, dc = spec.variant, spec.budget, spec.near_dup, spec.decontam
    rules = dict(rules or {})
    for ex in examples:  # a source the caller gave no rules for gets its format's
        if ex.origin.source not in rules:
            rules[ex.origin.source] = format_rules(spec, ex.meta.get("format", ""))
    checks = {name: r.checks() for name, r in rules.items()}
    curated = frozenset(name for name, r in rules.items() if r.curated)
    rejected: list[tuple[Example, str]] = []
    funnel = [_step("validated", examples)]
    pool = examples
    if variant == "single_source":
        pool = [ex for ex in examples if ex.origin.source == spec.single_source]
        rejected += [(ex, "other_source") for ex in examples if ex.origin.source != spec.single_source]
        funnel.append(_step("single_source", pool))
    pool = pool_in = [rewrite(ex, se_prompt=spec.se_prompt) for ex in pool]
    rewritten = Counter(r for ex in pool for r in ex.meta.get("rewrites", []))
    if variant in ("lima", "single_source"):
        verdicts = [(ex, *apply_filters(ex, checks[ex.origin.source])) for ex in pool]
        pool = [ex for ex, keep, _ in verdicts if keep]
        rejected += [(ex, reason) for ex, keep, reason in verdicts if not keep]
        funnel.append(_step("filters", pool))
    index = build_index(prompts, ngram=dc.ngram, min_words=dc.min_words, similarity=dc.short_similarity)
    for name, run in (
        ("dedup", lambda p: dedup_prompts(p)),
        ("decontam", lambda p: remove_contaminated(p, index)),
        (
            "near_dup",
            lambda p: near_duplicates(p, threshold=nd.threshold, shingle=nd.shingle, num_perm=nd.num_perm, sign=sign),
        ),
    ):
        pool, out = run(pool)
        rejected += out
        funnel.append(_step(name, pool))

    vectors = embed([ex.prompt for ex in pool]) if embed is not None and pool else None
    if variant == "random":
        selected, left_out = sample(pool, budget, seed)
    else:
        selected, left_out = select(
            pool,
            budget,
            quotas,
            site_temperature=spec.site_temperature,
            vectors=vectors,
            seed=seed,
            first=curated if variant in ("lima", "single_source") else frozenset(),
            mix=spec.mix,
        )
    rejected += left_out
    funnel.append(_step("selected", selected))

    measure = None
    if vectors is not None and selected:
        chosen = {id(ex) for ex in selected}
        mask = np.array([id(ex) in chosen for ex in pool])
        measure = diversity_measure(vectors, np.flatnonzero(mask), seed=seed)
    where = {ex.id: f"{ex.origin.file} row {ex.origin.row}" for ex in pool_in}

    def extra(ex: Example, reason: str) -> str:  # the evidence a reader needs to check the drop
        code, _, other = reason.partition(":")
        if code == "contaminated":
            return describe_match(ex, index)
        return f"kept {other}: {where[other]}" if other in where else ""

    dropped = [drop(ex, r, extra(ex, r)) for ex, r in rejected]
    assert len(selected) + len(dropped) == len(examples), "curate lost or duplicated an example"
    sources = sorted({ex.origin.source for ex in examples})
    applied = {name: rules[name].describe() for name in sources} if variant in ("lima", "single_source") else {}
    return CurateResult(selected, dropped, funnel, measure, dict(sorted(rewritten.items())), index.stats, applied)


def source_rules(spec: Curate, sources: Sequence[Source]) -> dict[str, Rules]:
    """Each train source's selection rules: its format's (curate.response_chars, and Stack Exchange's score and
    style rules), with the source's own `rules` over them, or none at all for a `curated: true` source."""
    return {
        s.name: format_rules(spec, s.format, s.rules, curated=bool(s.curated)) for s in sources if s.split == "train"
    }


def format_rules(spec: Curate, fmt: str, own: SourceRules | None = None, *, curated: bool = False) -> Rules:
    """The rules for one source of format `fmt`: the format's length window (none when curate.response_chars leaves
    the format out), the score rule for Stack Exchange, and any value the source sets itself (`own`)."""
    lo, hi = spec.response_chars.get(fmt) or (0, None)
    mine = {k: v for k, v in (vars(own) if own else {}).items() if v is not None}  # the keys the source sets
    return Rules(
        curated=curated,
        min_response_chars=mine.get("min_response_chars", lo),
        max_response_chars=mine.get("max_response_chars", hi),
        se_min_score=mine.get("se_min_score", spec.se_min_score),
        stackexchange=fmt == "stackexchange_xml",
    )


def shortfall(result: CurateResult, budget: int, quotas: Mapping[str, int]) -> dict[str, Any]:
    """How far the selection fell short of the budget and of each source's quota, and why (the source's drops by
    reason): a set smaller than asked for is said, never left for the reader to notice.

    {"budget", "selected", "short_by", "sources": {name: {"quota", "selected", "short_by", "reasons"}}}, a source
    listed only when it has a quota it did not fill.
    """
    selected = Counter(e.origin.source for e in result.selected)
    sources = {}
    for name, quota in sorted(quotas.items()):
        if quota and selected[name] < quota:
            why = Counter(d.reason.split(":")[0] for d in result.dropped if d.origin.source == name)
            sources[name] = {
                "quota": quota,
                "selected": selected[name],
                "short_by": quota - selected[name],
                "reasons": dict(sorted(why.items())),
            }
    n = len(result.selected)
    return {"budget": budget, "selected": n, "short_by": max(0, budget - n), "sources": sources}


def describe_shortfall(short: dict[str, Any]) -> str:
    """The stage's warning for `shortfall(...)`, "" when the budget and every quota were met.

    >>> describe_shortfall({"budget": 10, "selected": 7, "short_by": 3, "sources": {"se": {"quota": 5,
    ...     "selected": 2, "short_by": 3, "reasons": {"response_too_short": 9}}}})
    'selected 7 of the budget 10 (short by 3); se: 2 of its quota 5 (its drops: response_too_short 9)'
    """
    parts = [f"selected {short['selected']} of the budget {short['budget']} (short by {short['short_by']})"]
    parts = parts if short["short_by"] else []
    for name, s in short["sources"].items():
        why = ", ".join(f"{r} {n}" for r, n in s["reasons"].items()) or "no candidates"
        parts.append(f"{name}: {s['selected']} of its quota {s['quota']} (its drops: {why})")
    return "; ".join(parts)


def curate_metrics(
    result: CurateResult, spec: Curate, *, candidates: int, quotas: Mapping[str, int]
) -> dict[str, Any]:
    """metrics/curate.json: the counts, the funnel per step and per source, the reasons, the selection's diversity,
    and the shortfall against the budget and the quotas."""
    return {
        "counts": {"candidates": candidates, "selected": len(result.selected), "dropped": len(result.dropped)},
        "budget_shortfall": shortfall(result, spec.budget, quotas),
        "variant": spec.variant,
        "funnel": result.funnel,
        "per_source": result.per_source(),
        "dropped_by_reason": result.dropped_by_reason(),
        "rewritten": result.rewritten,
        "decontam": result.decontam,
        "rules": result.rules,
        "diversity": result.diversity,
    }
