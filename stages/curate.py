"""DVC stage `curate`: data/validated/*.parquet -> data/curated/train.jsonl (the training set) and its dataset card.

Runs lessismore.curate: rewrites, quality filters, dedup, decontamination against the dev and test prompts,
near-duplicates, then a diverse selection under the budget and per-source quotas (or a variant's ablation; the
variants scored, ifd_only and quality_only rank by model-based scores, cached in data/scores.jsonl by content).
train.jsonl holds one records.Example a line (chat messages + origin), the format the trainer reads; every
example not selected goes to data/quarantine/curate.jsonl with its reason; metrics/curate.json has the funnel
(per step and per source) and the diversity of the selection against a random set of the same size;
data/curated/README.md is the Hugging Face dataset card (sources and licenses, the funnel, how to reproduce).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from functools import partial
from typing import Any

from tqdm import tqdm

from lessismore import contract as c
from lessismore import records
from lessismore.cards import dataset_card
from lessismore.config import load_params
from lessismore.curate import curate, curate_metrics, describe_shortfall, source_rules
from lessismore.curate.on_engine import embedder
from lessismore.engine import ordered, pooled
from lessismore.errors import BadValue, NotFound, run_stage
from lessismore.judge.cache import KeyedCache
from lessismore.records import JsonlSink, Prompt, read_parquet, write_jsonl
from lessismore.scores.scorers import Scorers, weights_for


def main() -> None:
    # ------------------------------------------------------------------------------------------------------------
    # params and inputs
    params = load_params(stage="curate")
    cfg = params.curate
    for name in (c.EXAMPLES, c.PROMPTS):  # the examples are read shard by shard, below
        if not (c.VALIDATED / name).exists():
            raise NotFound(f"{c.VALIDATED / name} not found; run the validate stage first (`dvc repro validate`)")
    prompts = read_parquet(c.VALIDATED / c.PROMPTS, Prompt)  # dev + test: kept out of the training set
    shard_rows = params.data.shard_rows
    batches = records.iter_tables(c.VALIDATED / c.EXAMPLES, shard_rows)  # streamed: one shard's rows at a time
    sources = params.ingest.sources
    quotas = {s.name: s.quota for s in sources if s.split == "train" and s.quota}
    # the embeddings run on data.engine: here, or on a Ray cluster (so does the per-row work: `prescreen` below)
    embed = embedder(params.data) if cfg.diversity == "kcenter" else None
    # the model-based scores (variants scored, ifd_only, quality_only), each computed once: the cache is kept
    c.SCORE_CACHE.parent.mkdir(parents=True, exist_ok=True)
    c.SCORE_CACHE.touch()  # a DVC out in every variant (empty until a variant scores)
    kinds = weights_for(cfg.variant, cfg.scores.weights)
    cache = KeyedCache(c.SCORE_CACHE)
    score = Scorers(cfg.scores, list(kinds), cache, c.MODEL_DIRS, params.base.seed) if kinds else None

    # ------------------------------------------------------------------------------------------------------------
    # the funnel, streamed: every drop goes to the quarantine (written even when empty) as it is decided
    start = time.perf_counter()
    rules = source_rules(cfg, sources)
    total = records.count_rows(c.VALIDATED / c.EXAMPLES)
    with (
        cache,
        JsonlSink(c.quarantine("curate")) as dropped,
        tqdm(total=total, desc="curate", unit="example") as bar,
    ):
        result = curate(
            _counted(batches, bar),
            prompts,
            cfg,
            quotas=quotas,
            seed=params.base.seed,
            out=dropped.write_line,  # each drop as its line, encoded where it was decided
            embed=embed,
            rules=rules,
            spill_rows=shard_rows,
            score=score,
            prescreen=partial(pooled, spec=params.data),  # per batch: in worker processes, or actors on Ray
            each=partial(ordered, spec=params.data),  # per row group of the spill (a local folder): worker processes
        )

    # ------------------------------------------------------------------------------------------------------------
    # outputs: the training set, the metrics, the dataset card
    write_jsonl(c.TRAIN_SET, result.selected)
    metrics = curate_metrics(result, cfg, quotas=quotas)
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


def _counted(batches: Iterator[Any], bar: tqdm) -> Iterator[Any]:
    for batch in batches:
        yield batch
        bar.update(batch.num_rows)


if __name__ == "__main__":
    run_stage("curate", main)
