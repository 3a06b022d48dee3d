"""DVC stage `curate`: data/validated/examples.parquet -> data/curated/train.jsonl (the training set).

Runs lessismore.curate (filters -> prompt dedup -> quotas under a budget, or a seeded random sample for the
ablation). train.jsonl holds one records.Example a line (chat messages + origin), the format the trainer reads;
every example not selected goes to data/quarantine/curate.jsonl with its reason; metrics/curate.json has the funnel.
"""

from __future__ import annotations

import sys
from pathlib import Path

from lessismore import records
from lessismore.config import load_params
from lessismore.curate import curate
from lessismore.records import Example, read_parquet, write_jsonl

VALIDATED = Path("data/validated/examples.parquet")
TRAIN = Path("data/curated/train.jsonl")
QUARANTINE = Path("data/quarantine/curate.jsonl")
METRICS = Path("metrics/curate.json")


def main() -> None:
    # ------------------------------------------------------------------------------------------------------------
    # params and inputs
    params = load_params()
    cfg = params.curate
    if not VALIDATED.exists():
        sys.exit(f"curate: {VALIDATED} not found; run the validate stage first (`dvc repro validate`)")
    examples = read_parquet(VALIDATED, Example)

    # ------------------------------------------------------------------------------------------------------------
    # the funnel (pure and fast: no progress bar needed)
    result = curate(
        examples,
        variant=cfg.variant,
        budget=cfg.budget,
        quotas=cfg.quotas,
        min_response_chars=cfg.min_response_chars,
        max_response_chars=cfg.max_response_chars,
        se_min_score=cfg.se_min_score,
        seed=params.base.seed,
    )
    # ------------------------------------------------------------------------------------------------------------
    # outputs: the training set, the quarantine (written even when empty), the metrics
    write_jsonl(TRAIN, result.selected)
    write_jsonl(QUARANTINE, result.dropped)
    metrics = {
        "counts": {"candidates": len(examples), "selected": len(result.selected), "dropped": len(result.dropped)},
        "variant": cfg.variant,
        "funnel": result.funnel,
        "per_source": result.per_source(),
        "dropped_by_reason": result.dropped_by_reason(),
    }
    records.write_json(METRICS, metrics)
    funnel = " -> ".join(f"{s['step']} {s['n']}" for s in result.funnel)
    print(f"curate ({cfg.variant}): {funnel}; {TRAIN}, quarantine {QUARANTINE}", file=sys.stderr)
    if not result.selected:  # training on nothing would fail later with a far less useful message
        reasons = ", ".join(f"{r} {n}" for r, n in metrics["dropped_by_reason"].items())
        sys.exit(f"curate: no example selected ({reasons}); loosen the curate.* filters in params.yaml")


if __name__ == "__main__":
    main()
