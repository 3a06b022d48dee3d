"""DVC stage `curate`: data/validated/*.parquet -> data/curated/train.jsonl (the training set) and its dataset card.

Runs lessismore.curate: rewrites, quality filters, dedup, decontamination against the dev and test prompts,
near-duplicates, then a diverse selection under the budget and per-source quotas (or a variant's ablation).
train.jsonl holds one records.Example a line (chat messages + origin), the format the trainer reads; every
example not selected goes to data/quarantine/curate.jsonl with its reason; metrics/curate.json has the funnel
(per step and per source) and the diversity of the selection against a random set of the same size;
data/curated/README.md is the Hugging Face dataset card (sources and licenses, the funnel, how to reproduce).
"""

from __future__ import annotations

import sys
import time

from lessismore import contract as c
from lessismore import records
from lessismore.cards import dataset_card
from lessismore.config import load_params
from lessismore.curate import curate, curate_metrics, describe_shortfall, source_rules
from lessismore.curate.on_engine import embedder, signer
from lessismore.errors import BadValue, NotFound, run_stage
from lessismore.records import Example, Prompt, read_parquet, write_jsonl


def main() -> None:
    # ------------------------------------------------------------------------------------------------------------
    # params and inputs
    params = load_params(stage="curate")
    cfg = params.curate
    for name in (c.EXAMPLES, c.PROMPTS):
        if not (c.VALIDATED / name).exists():
            raise NotFound(f"{c.VALIDATED / name} not found; run the validate stage first (`dvc repro validate`)")
    examples = read_parquet(c.VALIDATED / c.EXAMPLES, Example)
    prompts = read_parquet(c.VALIDATED / c.PROMPTS, Prompt)  # dev + test: kept out of the training set
    sources = params.ingest.sources
    quotas = {s.name: s.quota for s in sources if s.split == "train" and s.quota}
    # the per-row work (MinHash signatures, embeddings) runs on data.engine: here, or on a Ray cluster
    embed = embedder(params.data) if cfg.diversity == "kcenter" else None
    sign = signer(params.data, shingle=cfg.near_dup.shingle, num_perm=cfg.near_dup.num_perm)

    # ------------------------------------------------------------------------------------------------------------
    # the funnel (the embedding step shows its own progress bar)
    start = time.perf_counter()
    rules = source_rules(cfg, sources)
    result = curate(examples, prompts, cfg, quotas=quotas, seed=params.base.seed, embed=embed, sign=sign, rules=rules)

    # ------------------------------------------------------------------------------------------------------------
    # outputs: the training set, the quarantine (written even when empty), the metrics, the dataset card
    write_jsonl(c.TRAIN_SET, result.selected)
    write_jsonl(c.quarantine("curate"), result.dropped)
    metrics = curate_metrics(result, cfg, candidates=len(examples), quotas=quotas)
    records.write_json(c.metrics("curate"), metrics)
    records.write_json(c.timing("curate"), {"seconds": round(time.perf_counter() - start, 2)})
    c.DATASET_CARD.write_text(dataset_card(metrics, sources, cfg, seed=params.base.seed), encoding="utf-8")
    funnel = " -> ".join(f"{s['step']} {s['n']}" for s in result.funnel)
    print(f"curate ({cfg.variant}): {funnel}; {c.TRAIN_SET}, quarantine {c.quarantine('curate')}", file=sys.stderr)
    if short := describe_shortfall(metrics["budget_shortfall"]):
        print(f"curate: WARNING {short}; loosen the filters or the quotas, or add sources", file=sys.stderr)
    if not result.selected:  # training on nothing would fail later with a far less useful message
        reasons = ", ".join(f"{r} {n}" for r, n in metrics["dropped_by_reason"].items())
        raise BadValue(f"no example selected ({reasons}); loosen the curate.* filters in params.yaml")


if __name__ == "__main__":
    run_stage("curate", main)
