"""curate: validated Examples -> the small training set (LIMA: 1,000 examples). The stage after validate.

The funnel, one step at a time (funnel.py streams it, batch by batch, in bounded memory):
  scope (variant single_source) -> rewrites (transforms.py: LIMA's wikiHow and Stack Exchange prompt edits)
  -> quality filters (filters.py; off for the random and unfiltered ablations) -> exact prompt dedup (dedup.py)
  -> decontamination against every dev and test prompt (decontam.py) -> near-duplicates (neardup.py, MinHash LSH
     and union-find)
  -> selection under the budget: per-source quotas, sites by temperature, farthest-first on embeddings (select.py);
     variant random: a seeded sample of the budget instead; variants scored, ifd_only, quality_only: the best by
     model-based scores, kept apart by an embedding distance (scored.py, DEITA).
Dedup and decontamination run in every variant: they keep the evaluation honest, they are not quality rules.
Every example not selected becomes a records.Dropped (stage "curate") with its reason and a detail naming its file
and row, so the funnel adds up: candidates = selected + dropped, per source and per step.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lessismore.curate.filters import format_rules, source_rules
from lessismore.curate.funnel import CurateResult, Embed, curate, drop

if TYPE_CHECKING:
    from lessismore.config import Curate

__all__ = [
    "CurateResult",
    "Embed",
    "curate",
    "curate_metrics",
    "describe_shortfall",
    "drop",
    "format_rules",
    "shortfall",
    "source_rules",
]


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
            why = result.drops.get(name, Counter())
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


def curate_metrics(result: CurateResult, spec: Curate, *, quotas: Mapping[str, int]) -> dict[str, Any]:
    """metrics/curate.json: the counts, the funnel per step and per source, the reasons, the selection's diversity,
    and the shortfall against the budget and the quotas."""
    return {
        "counts": {
            "candidates": result.candidates,
            "selected": len(result.selected),
            "dropped": result.candidates - len(result.selected),
        },
        "budget_shortfall": shortfall(result, spec.budget, quotas),
        "variant": spec.variant,
        "funnel": result.funnel,
        "per_source": result.per_source(),
        "dropped_by_reason": result.dropped_by_reason(),
        "rewritten": result.rewritten,
        "decontam": result.decontam,
        "rules": result.rules,
        "diversity": result.diversity,
        "scores": result.scores,
    }
