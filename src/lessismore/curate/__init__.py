"""curate: validated Examples -> the small training set (LIMA: 1,000 examples). The stage after validate.

Variant "lima": quality filters (filters.py) -> exact prompt dedup (dedup.py) -> per-source quotas under a budget
(select.py). Variant "random" (the ablation): a seeded sample of the budget, nothing else. Every example not
selected becomes a records.Dropped (stage "curate") with its reason code and a detail naming its file and row,
so the funnel adds up: candidates = selected + dropped.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

from lessismore.curate.dedup import dedup_prompts
from lessismore.curate.filters import REASONS, apply_filters, lima_checks
from lessismore.curate.select import sample, select_quotas
from lessismore.records import Dropped, Example, to_dict

__all__ = ["CurateResult", "curate", "drop"]


@dataclass(frozen=True)
class CurateResult:
    selected: list[Example]  # in input order
    dropped: list[Dropped]  # every candidate not selected, with its reason
    funnel: list[dict[str, Any]]  # [{"step": "validated" | "filters" | "dedup" | "selected", "n": count left}]

    def per_source(self) -> dict[str, dict[str, int]]:
        candidates = Counter(e.origin.source for e in self.selected) + Counter(d.origin.source for d in self.dropped)
        selected = Counter(e.origin.source for e in self.selected)
        return {s: {"candidates": candidates[s], "selected": selected[s]} for s in sorted(candidates)}

    def dropped_by_reason(self) -> dict[str, int]:
        """Counts per reason code; "duplicate_prompt:<id>" is counted as "duplicate_prompt"."""
        return dict(sorted(Counter(d.reason.split(":")[0] for d in self.dropped).items()))


def drop(example: Example, reason: str) -> Dropped:
    """A curate quarantine entry: the reason code plus a detail naming file, row and what to change."""
    code, _, kept = reason.partition(":")
    facts = [f"response {len(example.response.strip())} chars"]
    facts += [f"score {example.meta['score']}"] if "score" in example.meta else []
    facts += [f"kept {kept}"] if kept else []
    detail = f"{example.origin.file} row {example.origin.row}: {REASONS.get(code, code)} ({', '.join(facts)})"
    return Dropped(stage="curate", reason=reason, origin=example.origin, detail=detail, record=to_dict(example))


def curate(
    examples: list[Example],
    *,
    variant: Literal["lima", "random"],
    budget: int,
    quotas: dict[str, int],
    min_response_chars: int,
    max_response_chars: int,
    se_min_score: int,
    seed: int,
) -> CurateResult:
    """Run the funnel over `examples` (the validated ones) and return what was selected and why the rest was not."""
    if variant == "random":  # the ablation: same budget, no quality rules
        selected, rejected = sample(examples, budget, seed)
        counts = [len(examples), len(examples)]
    else:
        checks = lima_checks(min_response_chars, max_response_chars, se_min_score)
        verdicts = [(ex, *apply_filters(ex, checks)) for ex in examples]
        passed = [ex for ex, keep, _ in verdicts if keep]
        unique, duplicates = dedup_prompts(passed)
        selected, left_out = select_quotas(unique, budget, quotas, seed)
        rejected = [(ex, reason) for ex, keep, reason in verdicts if not keep] + duplicates + left_out
        counts = [len(passed), len(unique)]
    steps = zip(("validated", "filters", "dedup", "selected"), [len(examples), *counts, len(selected)], strict=True)
    dropped = [drop(ex, reason) for ex, reason in rejected]
    assert len(selected) + len(dropped) == len(examples), "curate lost or duplicated an example"
    return CurateResult(selected, dropped, [{"step": step, "n": n} for step, n in steps])
