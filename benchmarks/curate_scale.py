"""Benchmark: ingest -> validate -> curate (budget 1000, kcenter) on the public pool scaled N times (issue 15).

Builds, in a temp dir (never in the repo), every source of the public pool (../shared/data/pool: Stack Exchange
Posts.xml, wikiHow CSVs, WritingPrompts CSV, the Alpaca subset) N times over in its own format (_scale.py: copy k
renumbers the file's ids and replaces a few words, seeded by k, so copies are new examples to exact dedup while
long ones stay near-duplicates at Jaccard >= 0.8 on 5-word shingles and short ones do not: the script prints the
share per source); the WritingPrompts test subset is the test split, once.
For each N it runs the real stage scripts (stages/ingest.py, validate.py, curate.py, each in its own process, cwd
the temp project, as DVC runs them) with the repo's params.yaml, the LIMA profile's curate section, budget 1000,
kcenter, and LIMA's quotas (curate_pool.py's mix), and reads each process's wall time and peak RSS (os.wait4).
Per N it prints the time and memory, the curate funnel (candidates, selected, dropped by reason), the share of
the copies near-dup removal caught (of the candidates the copies added at that step, against the N = 1 anchor),
and near-dup precision/recall against exact Jaccard on a sample of the validated examples (neardup's
near_dup_quality, as curate_pool.py reports it for the pool). The anchor is N = 1 in the same run.
Goals on 2 cores: peak RSS ratio N=50 / N=1 <= 1.5; >= 3,000 records/s end to end at N = 50.
Last line: `curate_scale: N=50 <records> records in <s> s (<rec/s> rec/s), peak RSS <MiB> MiB, RSS ratio N50/N1 = <x>`.

    python benchmarks/curate_scale.py [--pool ../shared/data/pool] [--scales 1 10 50] [--engine ray --address \
        ray://head:10001] [--keep DIR]
"""

from __future__ import annotations

import argparse
import heapq
import json
import shutil
import tempfile
import time
from pathlib import Path

import yaml
from _scale import DEFAULT_POOL, RATE, REPO, pool_dir, run_stage, scale_pool, write_params

GOAL_RATIO, GOAL_RATE = 1.5, 3000.0
STAGES = ("ingest", "validate", "curate")


def make_project(root: Path, pool: Path, copies: int, args: argparse.Namespace) -> int:
    """The scaled pool and a params.yaml for it under `root`; returns the source rows written."""
    sources, rows = scale_pool(pool, root, copies, seed=args.seed, rate=args.rate)
    lima = yaml.safe_load((REPO / "profiles/lima.yaml").read_text(encoding="utf-8"))["curate"]
    data = {"engine": args.engine, "ray": {"address": args.address}}
    curate = lima | {"budget": 1000, "diversity": "kcenter"}
    # the pool's WritingPrompts test subset repeats 3 prompts and has an off-topic post: they leave the eval set
    write_params(root, REPO, sources, data=data, validate={"allow_eval_drop": True}, curate=curate)
    return rows


def quality_sample(root: Path, size: int) -> list:
    """`size` validated examples, those with the smallest ids (content hashes: a uniform draw that does not depend
    on the order), streamed shard by shard: only the sample is held."""
    from lessismore import contract as c
    from lessismore import records

    batches = records.iter_batches(root / c.VALIDATED / c.EXAMPLES, records.Example, 5000)
    return heapq.nsmallest(size, (ex for batch in batches for ex in batch), key=lambda ex: ex.id)


def near_dup(root: Path, sample: int, seed: int) -> dict:
    """near_dup_quality at curate's own near_dup params on a sample of the validated examples."""
    from lessismore.curate.neardup import near_dup_quality

    nd = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))["curate"]["near_dup"]
    examples = quality_sample(root, sample)
    args = {"threshold": nd["threshold"], "shingle": nd["shingle"], "num_perm": nd["num_perm"]}
    return near_dup_quality(examples, **args, sample=len(examples), seed=seed) | {"threshold": nd["threshold"]}


def measure(pool: Path, copies: int, args: argparse.Namespace, tmp: Path) -> dict:
    root = tmp / f"x{copies}"
    root.mkdir()
    t = time.perf_counter()
    rows = make_project(root, pool, copies, args)
    print(f"curate_scale: N={copies} built {rows} source rows in {time.perf_counter() - t:.0f} s ({root})")
    m: dict = {"rows": rows}
    for name in STAGES:
        print(f"curate_scale: N={copies} stage {name} ...", flush=True)
        m[f"{name}_s"], m[f"{name}_mib"] = run_stage(root, REPO, name)
    ingest = json.loads((root / "metrics/ingest.json").read_text())["counts"]
    m["records"] = sum(ingest.values())  # examples + prompts + dropped: every record ingest wrote
    m["examples"] = ingest["examples"]
    m["curate"] = json.loads((root / "metrics/curate.json").read_text())
    m["seconds"] = sum(m[f"{name}_s"] for name in STAGES)
    m["peak_mib"] = max(m[f"{name}_mib"] for name in STAGES)
    m["quality"] = near_dup(root, args.sample, args.seed) if args.sample else None
    if args.keep:  # the outputs, logs and params of a run; not the copies of the pool (research-only, and big)
        keep = Path(args.keep) / root.name
        shutil.copytree(root / "metrics", keep / "metrics", dirs_exist_ok=True)
        for path in [root / "params.yaml", *root.glob("*.log")]:
            shutil.copy(path, keep / path.name)
    return m


def step(m: dict, name: str, source: str = "") -> int:
    """Examples left after funnel step `name` (of `source`, or all)."""
    row = next(s for s in m["curate"]["funnel"] if s["step"] == name)
    return row["per_source"].get(source, 0) if source else row["n"]


def caught(m: dict, anchor: dict, source: str = "") -> tuple[int, int]:
    """(copies that reached the near-dup step, of them removed there): the candidates the copies added at that
    step against the N = 1 anchor, for one source or all."""
    before = step(m, "decontam", source) - step(anchor, "decontam", source)
    return before, before - (step(m, "near_dup", source) - step(anchor, "near_dup", source))


def caught_line(m: dict, anchor: dict) -> str:
    before, removed = caught(m, anchor)
    if before <= 0:
        return "near-dup step: (the anchor: no copies)"
    shares = {name: caught(m, anchor, name) for name in m["curate"]["funnel"][0]["per_source"]}
    by_source = ", ".join(f"{name} {r / b:.0%}" for name, (b, r) in shares.items() if b > 0)
    return f"near-dup step removed {removed / before:.1%} of the {before} copies that reached it ({by_source})"


def lines(copies: int, m: dict, anchor: dict) -> list[str]:
    counts, reasons = m["curate"]["counts"], m["curate"]["dropped_by_reason"]
    out = [
        f"N={copies} {m['rows']} source rows -> {m['records']} records ({m['examples']} examples) in "
        f"{m['seconds']:.1f} s ({m['records'] / m['seconds']:.0f} rec/s; "
        + ", ".join(f"{s} {m[f'{s}_s']:.1f} s" for s in STAGES)
        + f"), peak RSS {m['peak_mib']:.0f} MiB ("
        + ", ".join(f"{s} {m[f'{s}_mib']:.0f}" for s in STAGES)
        + ")",
        f"  funnel: candidates {counts['candidates']}, selected {counts['selected']}, dropped {json.dumps(reasons)}; "
        + " -> ".join(f"{s['step']} {s['n']}" for s in m["curate"]["funnel"]),
        f"  {caught_line(m, anchor)}",
    ]
    if q := m["quality"]:
        p, r = (f"{v:.3f}" if v is not None else "n/a" for v in (q["precision"], q["recall"]))
        out.append(
            f"  near-dup MinHash LSH vs exact Jaccard >= {q['threshold']} on {q['sample']} validated examples: "
            f"precision {p}, recall {r} ({q['pairs_exact']} exact pairs, {q['pairs_lsh']} flagged)"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", default=str(DEFAULT_POOL))
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--engine", choices=("local", "ray"), default="local", help="data.engine")
    parser.add_argument("--address", default="", help='data.ray.address ("": the RAY_ADDRESS env var)')
    parser.add_argument("--rate", type=float, default=RATE, help="share of the words replaced in copy k >= 1")
    parser.add_argument("--seed", type=int, default=0, help="the copies' perturbation seed")
    parser.add_argument("--sample", type=int, default=4000, help="examples for near-dup precision/recall (0: skip)")
    parser.add_argument("--keep", default="", help="copy each run's outputs and logs (not the data) here")
    args = parser.parse_args()
    pool = pool_dir(args.pool, "curate_scale")
    scales = sorted(set(args.scales))
    results: dict[int, dict] = {}
    with tempfile.TemporaryDirectory(prefix="curate_scale-") as tmp:
        for copies in scales:
            results[copies] = m = measure(pool, copies, args, Path(tmp))
            print("\n".join(f"curate_scale: {line}" for line in lines(copies, m, results[scales[0]])), flush=True)
    low, high = scales[0], scales[-1]
    top = results[high]
    ratio, rate = top["peak_mib"] / results[low]["peak_mib"], top["records"] / top["seconds"]
    print(
        f"goals ({args.engine} engine): RSS ratio N{high}/N{low} <= {GOAL_RATIO} while the records grow "
        f"{top['records'] / results[low]['records']:.1f}x: ratio/goal = {ratio / GOAL_RATIO:.2f}; "
        f">= {GOAL_RATE:.0f} rec/s at N={high}: measured/goal = {rate / GOAL_RATE:.2f}"
    )
    print(
        f"curate_scale: N={high} {top['records']} records in {top['seconds']:.1f} s ({rate:.0f} rec/s), "
        f"peak RSS {top['peak_mib']:.0f} MiB, RSS ratio N{high}/N{low} = {ratio:.2f}"
    )


if __name__ == "__main__":
    main()
