"""Benchmark: ingest -> validate -> curate on the real public pool (../shared/data/pool), in one process.

Runs the same cores the DVC stages run (lessismore.sources, .validate, .curate with all-MiniLM-L6-v2) with LIMA's
rules, and prints: seconds per step (the split), records per second, peak memory (max RSS), the funnel per step
and per source, the near-duplicate precision/recall of MinHash LSH against exact Jaccard on a sample, and the
diversity of the selection against a random set of the same size. The goal is the whole pool in <= 120 s on 2
cores including embeddings; the line before the last gives the ratio to that anchor.
Last line: `curate_pool: N records in S s (R rec/s)`.

    python benchmarks/curate_pool.py [--pool ../shared/data/pool] [--budget 1000] [--out /tmp/curate_pool]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import sys
import time
from collections import Counter
from pathlib import Path

from _scale import POOL, expand

GOAL_S = 120.0


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", default="../shared/data/pool")
    parser.add_argument("--budget", type=int, default=1000)
    parser.add_argument("--min-chars", type=int, default=1200, help="LIMA: 1200")
    parser.add_argument("--out", default="", help="write train.jsonl and the quarantines here to read them")
    args = parser.parse_args()
    pool = Path(args.pool)
    if not pool.is_dir():
        sys.exit(f"curate_pool: {pool} not found; pass --pool <dir> (the shared public data pool)")
    t = time.perf_counter()  # the imports (pandas, GX, datasketch, scipy) are part of what a user waits for
    from lessismore.config import Source, load_params
    from lessismore.curate import curate
    from lessismore.curate.embed import load_embedder
    from lessismore.curate.neardup import near_dup_quality
    from lessismore.records import Dropped, Example, Prompt, write_jsonl
    from lessismore.sources import ingest_source
    from lessismore.validate import validate_records

    split: dict[str, float] = {"imports": time.perf_counter() - t}

    # ingest -----------------------------------------------------------------------------------------------------
    t = time.perf_counter()
    examples: list[Example] = []
    prompts: list[Prompt] = []
    dropped: list[Dropped] = []
    for i, (name, fmt, rel, part, _quota) in enumerate(POOL):
        for path in expand(pool, rel):
            spec = Source(name, fmt, str(path), part, "see pool SOURCES.md", quota=_quota if part == "train" else None)
            for rec in ingest_source(spec, index=i):
                (examples if isinstance(rec, Example) else prompts if isinstance(rec, Prompt) else dropped).append(rec)
    split["ingest"] = time.perf_counter() - t
    n_records = len(examples) + len(prompts) + len(dropped)
    print(
        f"ingest: {len(examples)} examples, {len(prompts)} prompts, {len(dropped)} dropped "
        f"{dict(Counter(d.reason for d in dropped))}"
    )

    # validate ---------------------------------------------------------------------------------------------------
    t = time.perf_counter()
    sources = {name: rel for name, _, rel, _, _ in POOL}
    report = validate_records(
        examples, prompts, sources=sources, min_chars=1, max_chars=20000, max_quarantine_share=0.25
    )
    split["validate"] = time.perf_counter() - t
    print(
        f"validate: {len(report.examples)} examples, {len(report.prompts)} prompts, "
        f"{len(report.dropped)} quarantined {dict(Counter(d.reason for d in report.dropped))}"
    )

    # curate (embeddings timed apart) ------------------------------------------------------------------------------
    t = time.perf_counter()
    embedder = load_embedder(progress=False)
    load_s = time.perf_counter() - t
    embed_s = [0.0]

    def timed_embed(texts: list[str]):
        t0 = time.perf_counter()
        out = embedder(texts)
        embed_s[0] += time.perf_counter() - t0
        print(f"embed: {len(texts)} prompts in {time.perf_counter() - t0:.1f} s")
        return out

    t = time.perf_counter()
    demo = load_params("params.yaml").curate  # the demo's curation, on the pool's sizes
    windows = {fmt: (args.min_chars, w[1]) for fmt, w in demo.response_chars.items() if w}  # the mined formats
    spec = dataclasses.replace(demo, variant="lima", budget=args.budget, response_chars=windows)
    quotas = {name: quota for name, _, _, _, quota in POOL if quota}
    curate_lines: list[bytes] = []  # each drop as its quarantine line
    result = curate(
        [report.examples], report.prompts, spec, quotas=quotas, seed=1234, out=curate_lines.append, embed=timed_embed
    )
    split["curate (without embeddings)"] = time.perf_counter() - t - embed_s[0]
    split["embeddings (incl. model load)"] = load_s + embed_s[0]
    total = sum(split.values())

    # report -------------------------------------------------------------------------------------------------------
    print("funnel:")
    for step in result.funnel:
        print(f"  {step['step']:<14} {step['n']:>6}  {json.dumps(step['per_source'])}")
    print(f"dropped by reason: {result.dropped_by_reason()}")
    print(f"rewritten: {result.rewritten}")
    if result.diversity:
        print(f"diversity: {json.dumps(result.diversity)}")
    # the pool has few near-duplicates at 0.8, so the check runs on all of it, and at a lower threshold too
    for threshold in (0.8, 0.5):
        t = time.perf_counter()
        quality = near_dup_quality(
            report.examples, threshold=threshold, shingle=5, num_perm=128, sample=len(report.examples), seed=1234
        )
        print(
            f"near-dup MinHash LSH vs exact Jaccard at {threshold} ({time.perf_counter() - t:.1f} s, "
            f"not in the split): {json.dumps(quality)}"
        )
    if args.out:
        out = Path(args.out)
        write_jsonl(out / "train.jsonl", result.selected)
        (out / "curate.jsonl").write_bytes(b"".join(curate_lines))
        write_jsonl(out / "ingest.jsonl", dropped)
        write_jsonl(out / "validate.jsonl", report.dropped)
        print(f"wrote {out}/{{train,curate,ingest,validate}}.jsonl")
    print("split: " + ", ".join(f"{k} {v:.1f} s" for k, v in split.items()))
    print(f"peak memory (max RSS): {peak_mib():.0f} MiB")
    print(f"curate_pool: goal {GOAL_S:.0f} s, ratio goal / measured = {GOAL_S / total:.2f}")
    print(f"curate_pool: {n_records} records in {total:.1f} s ({n_records / total:.0f} rec/s)")


if __name__ == "__main__":
    main()
