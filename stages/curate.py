"""DVC stage `curate`: data/validated/*.parquet -> data/curated/train.jsonl (the training set).

Runs lessismore.curate: rewrites, quality filters, dedup, decontamination against the dev and test prompts,
near-duplicates, then a diverse selection under the budget and per-source quotas (or a variant's ablation).
train.jsonl holds one records.Example a line (chat messages + origin), the format the trainer reads; every
example not selected goes to data/quarantine/curate.jsonl with its reason; metrics/curate.json has the funnel
(per step and per source) and the diversity of the selection against a random set of the same size.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from lessismore import records
from lessismore.config import load_params
from lessismore.curate import curate
from lessismore.records import Example, Prompt, read_parquet, write_jsonl

VALIDATED = Path("data/validated")
TRAIN = Path("data/curated/train.jsonl")
QUARANTINE = Path("data/quarantine/curate.jsonl")
METRICS = Path("metrics/curate.json")


def main() -> None:
    # ------------------------------------------------------------------------------------------------------------
    # params and inputs
    params = load_params()
    cfg = params.curate
    for name in ("examples.parquet", "prompts.parquet"):
        if not (VALIDATED / name).exists():
            sys.exit(f"curate: {VALIDATED / name} not found; run the validate stage first (`dvc repro validate`)")
    examples = read_parquet(VALIDATED / "examples.parquet", Example)
    prompts = read_parquet(VALIDATED / "prompts.parquet", Prompt)  # dev + test: kept out of the training set
    quotas = {s.name: s.quota for s in params.ingest.sources if s.split == "train" and s.quota > 0}
    embed = None
    if cfg.diversity == "kcenter":
        from lessismore.curate.embed import load_embedder  # torch and the model load only when used

        embed = load_embedder()

    # ------------------------------------------------------------------------------------------------------------
    # the funnel (the embedding step shows its own progress bar)
    start = time.perf_counter()
    result = curate(
        examples,
        prompts,
        variant=cfg.variant,
        budget=cfg.budget,
        quotas=quotas,
        min_response_chars=cfg.min_response_chars,
        max_response_chars=cfg.max_response_chars,
        se_min_score=cfg.se_min_score,
        seed=params.base.seed,
        se_prompt=cfg.se_prompt,
        site_temperature=cfg.site_temperature,
        single_source=cfg.single_source,
        near_dup_threshold=cfg.near_dup.threshold,
        shingle=cfg.near_dup.shingle,
        num_perm=cfg.near_dup.num_perm,
        ngram=cfg.decontam.ngram,
        min_words=cfg.decontam.min_words,
        embed=embed,
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
        "rewritten": result.rewritten,
        "decontam": result.decontam,
        "diversity": result.diversity,
        "seconds": round(time.perf_counter() - start, 2),
    }
    records.write_json(METRICS, metrics)
    funnel = " -> ".join(f"{s['step']} {s['n']}" for s in result.funnel)
    print(f"curate ({cfg.variant}): {funnel}; {TRAIN}, quarantine {QUARANTINE}", file=sys.stderr)
    if not result.selected:  # training on nothing would fail later with a far less useful message
        reasons = ", ".join(f"{r} {n}" for r, n in metrics["dropped_by_reason"].items())
        sys.exit(f"curate: no example selected ({reasons}); loosen the curate.* filters in params.yaml")


if __name__ == "__main__":
    main()
