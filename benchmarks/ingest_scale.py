"""Benchmark: ingest + validate stream in bounded memory. A Stack Exchange dump scaled 1x and 8x, peak RSS of each.

Builds, in a temp dir (never in the repo), the public pool's Stack Exchange dumps (../shared/data/pool/stackexchange/
*/Posts.xml) repeated N times with _scale.py (shared with curate_scale.py): copy k renumbers every Id, ParentId and
AcceptedAnswerId by k * offset (so answers still join their question) and replaces a few words, one in each Title at
least (so the copies are different examples, not ids that validate quarantines as duplicates). For each N it runs
the real stage scripts (stages/ingest.py, then stages/validate.py, each in its own process, as DVC runs them) in a
project dir with the repo's params.yaml, the STEM and other dumps as two sources and the demo's test prompts, and
measures each process's wall time and peak RSS (os.wait4).
The anchor is the same run at N = 1: memory is bounded when the peak at N = 8 stays near it (goal <= 1.5x) while
the rows grow 8x. `--anchor-repo DIR` also runs another checkout's stages (e.g. the whole-table code before the
shards) on the same dumps, its src on PYTHONPATH, for the ratio against it.
Last line: `ingest_scale: N=8 <records> records in <s> s (<rec/s> rec/s), peak RSS <MiB> MiB, RSS ratio N8/N1 = <x>`.

    python benchmarks/ingest_scale.py [--pool ../shared/data/pool] [--scales 1 8] [--shard-rows 5000] \
        [--anchor-repo /path/to/other/checkout]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from _scale import DEFAULT_POOL, REPO, pool_dir, run_stage, scale_pool, write_params
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

GOAL_RATIO = 1.5
TEST = {"name": "test_prompts", "format": "prompts_jsonl", "path": "test.jsonl", "split": "test", "license": "x"}


def make_project(root: Path, pool: Path, copies: int, repo: Path, shard_rows: int) -> int:
    """A project dir for `repo`'s stages: its params.yaml with the scaled dumps and the demo's test prompts."""
    sources, rows = scale_pool(pool, root, copies, names=("se_stem", "se_other"))
    (root / "test.jsonl").write_bytes((REPO / "data/sources/prompts/test.jsonl").read_bytes())
    write_params(root, repo, [*sources, TEST], data={"shard_rows": shard_rows})
    return rows


def measure(pool: Path, copies: int, repo: Path, shard_rows: int, tmp: Path) -> dict:
    root = tmp / f"{repo.name}-x{copies}"
    root.mkdir()
    rows = make_project(root, pool, copies, repo, shard_rows)
    ingest_s, ingest_mib = run_stage(root, repo, "ingest")
    validate_s, validate_mib = run_stage(root, repo, "validate")
    counts = json.loads((root / "metrics/ingest.json").read_text())["counts"]
    records = sum(counts.values())  # examples + prompts + dropped: every record ingest wrote
    valid = json.loads((root / "metrics/validate.json").read_text())["counts"]
    assert counts["examples"] + counts["prompts"] == sum(valid.values()), (counts, valid)  # nothing lost
    return {
        "rows": rows,
        "records": records,
        "examples": counts["examples"],
        "seconds": ingest_s + validate_s,
        "ingest_s": ingest_s,
        "validate_s": validate_s,
        "peak_mib": max(ingest_mib, validate_mib),
        "ingest_mib": ingest_mib,
        "validate_mib": validate_mib,
    }


def line(label: str, copies: int, m: dict) -> str:
    rate = m["records"] / m["seconds"]
    return (
        f"{label}: N={copies} {m['rows']} source rows -> {m['records']} records ({m['examples']} examples) in "
        f"{m['seconds']:.1f} s ({rate:.0f} rec/s; ingest {m['ingest_s']:.1f} s, validate {m['validate_s']:.1f} s), "
        f"peak RSS {m['peak_mib']:.0f} MiB (ingest {m['ingest_mib']:.0f}, validate {m['validate_mib']:.0f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", default=str(DEFAULT_POOL))
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--shard-rows", type=int, default=5000, help="data.shard_rows (params.yaml: 5000)")
    parser.add_argument("--anchor-repo", default="", help="another checkout whose stages run on the same dumps")
    args = parser.parse_args()
    pool = pool_dir(args.pool, "ingest_scale")
    repos = [("sharded", REPO)] + ([("anchor", Path(args.anchor_repo).resolve())] if args.anchor_repo else [])
    results: dict[tuple[str, int], dict] = {}
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with tempfile.TemporaryDirectory(prefix="ingest_scale-") as tmp, Progress(*columns, transient=True) as bar:
        task = bar.add_task("ingest_scale", total=len(repos) * len(args.scales))
        for label, repo in repos:
            for copies in args.scales:
                bar.update(task, description=f"ingest_scale: {label} code, N={copies} (ingest, then validate)")
                results[label, copies] = m = measure(pool, copies, repo, args.shard_rows, Path(tmp))
                bar.console.print(line(label, copies, m))
                bar.advance(task)
    low, high = min(args.scales), max(args.scales)
    ours = results["sharded", high]
    ratio = ours["peak_mib"] / results["sharded", low]["peak_mib"]
    if args.anchor_repo:
        old = results["anchor", high]
        old_ratio = old["peak_mib"] / results["anchor", low]["peak_mib"]
        print(
            f"anchor ({args.anchor_repo}): RSS ratio N{high}/N{low} = {old_ratio:.2f}; at N={high} sharded/anchor: "
            f"peak RSS {ours['peak_mib'] / old['peak_mib']:.2f}, seconds {ours['seconds'] / old['seconds']:.2f}"
        )
    print(
        f"goal: RSS ratio N{high}/N{low} <= {GOAL_RATIO} while the records grow {high // low}x: ratio/goal = "
        f"{ratio / GOAL_RATIO:.2f}"
    )
    print(
        f"ingest_scale: N={high} {ours['records']} records in {ours['seconds']:.1f} s "
        f"({ours['records'] / ours['seconds']:.0f} rec/s), peak RSS {ours['peak_mib']:.0f} MiB, "
        f"RSS ratio N{high}/N{low} = {ratio:.2f}"
    )


if __name__ == "__main__":
    main()
