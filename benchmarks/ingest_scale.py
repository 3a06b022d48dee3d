"""Benchmark: ingest + validate stream in bounded memory. A Stack Exchange dump scaled 1x and 8x, peak RSS of each.

Builds, in a temp dir (never in the repo), the public pool's Stack Exchange dumps (../shared/data/pool/stackexchange/
*/Posts.xml) repeated N times: copy k renumbers every Id, ParentId and AcceptedAnswerId by k * offset (so answers
still join their question) and tags each Title with "(copy k)" (so the copies are different examples, not ids that
validate quarantines as duplicates). For each N it runs the real stage scripts (stages/ingest.py, then
stages/validate.py, each in its own process, as DVC runs them) in a project dir with the repo's params.yaml, the
dumps as one source and the demo's test prompts, and measures each process's wall time and peak RSS (os.wait4).
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
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

REPO = Path(__file__).resolve().parents[1]
GOAL_RATIO = 1.5
_ID = re.compile(r'\b(Id|ParentId|AcceptedAnswerId)="(\d+)"')
_TITLE = re.compile(r'\bTitle="([^"]*)"')


def scale_dump(src: Path, dst: Path, copies: int) -> int:
    """`src` Posts.xml written to `dst` with its rows `copies` times, renumbered and retitled; returns rows written."""
    lines = src.read_text(encoding="utf-8-sig").splitlines()
    rows = [line for line in lines if line.lstrip().startswith("<row ")]
    offset = 10 ** len(str(max(int(m.group(2)) for line in rows for m in _ID.finditer(line))))
    dst.parent.mkdir(parents=True, exist_ok=True)
    with dst.open("w", encoding="utf-8") as fh:
        fh.write('<?xml version="1.0" encoding="utf-8"?>\n<posts>\n')
        for k in range(copies):
            for line in rows:
                line = _ID.sub(lambda m: f'{m.group(1)}="{int(m.group(2)) + k * offset}"', line)  # noqa: B023
                fh.write((_TITLE.sub(lambda m: f'Title="{m.group(1)} (copy {k})"', line) if k else line) + "\n")  # noqa: B023
        fh.write("</posts>\n")
    return len(rows) * copies


def make_project(root: Path, pool: Path, copies: int, repo: Path, shard_rows: int) -> int:
    """A project dir for `repo`'s stages: its params.yaml with the scaled dumps and the demo's test prompts."""
    rows = sum(
        scale_dump(posts, root / "se" / posts.parent.name / "Posts.xml", copies)
        for posts in sorted(pool.glob("stackexchange/*/Posts.xml"))
    )
    (root / "test.jsonl").write_bytes((REPO / "data/sources/prompts/test.jsonl").read_bytes())
    params = yaml.safe_load((repo / "params.yaml").read_text(encoding="utf-8"))
    se = {"name": "se", "format": "stackexchange_xml", "path": "se/*/Posts.xml", "split": "train"}
    params["ingest"] = {
        "sources": [
            se | {"license": "CC BY-SA 4.0", "quota": 0, "curated": False},
            {"name": "test_prompts", "format": "prompts_jsonl", "path": "test.jsonl", "split": "test", "license": "x"},
        ]
    }
    if "data" in params:  # the sharded code; an anchor from before the shards has no such section
        params["data"]["shard_rows"] = shard_rows
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    return rows


def run_stage(root: Path, repo: Path, name: str) -> tuple[float, float]:
    """`repo`'s stages/<name>.py run in `root` with `repo`/src first on PYTHONPATH: (seconds, peak RSS in MiB)."""
    env = os.environ | {"PYTHONPATH": str(repo / "src"), "GX_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    log = (root / f"{name}.log").open("w")
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(repo / "stages" / f"{name}.py")], cwd=root, env=env, stderr=log)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    log.close()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"ingest_scale: {repo}/stages/{name}.py failed in {root}:\n{(root / f'{name}.log').read_text()}")
    return seconds, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def measure(pool: Path, copies: int, repo: Path, shard_rows: int, tmp: Path) -> dict:
    root = tmp / f"{repo.name}-x{copies}"
    root.mkdir()
    posts = make_project(root, pool, copies, repo, shard_rows)
    ingest_s, ingest_mib = run_stage(root, repo, "ingest")
    validate_s, validate_mib = run_stage(root, repo, "validate")
    counts = json.loads((root / "metrics/ingest.json").read_text())["counts"]
    records = sum(counts.values())  # examples + prompts + dropped: every record ingest wrote
    valid = json.loads((root / "metrics/validate.json").read_text())["counts"]
    assert counts["examples"] + counts["prompts"] == sum(valid.values()), (counts, valid)  # nothing lost
    return {
        "posts": posts,
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
        f"{label}: N={copies} {m['posts']} posts -> {m['records']} records ({m['examples']} examples) in "
        f"{m['seconds']:.1f} s ({rate:.0f} rec/s; ingest {m['ingest_s']:.1f} s, validate {m['validate_s']:.1f} s), "
        f"peak RSS {m['peak_mib']:.0f} MiB (ingest {m['ingest_mib']:.0f}, validate {m['validate_mib']:.0f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", default=str(REPO.parent / "shared/data/pool"))
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--shard-rows", type=int, default=5000, help="data.shard_rows (params.yaml: 5000)")
    parser.add_argument("--anchor-repo", default="", help="another checkout whose stages run on the same dumps")
    args = parser.parse_args()
    pool = Path(args.pool)
    if not any(pool.glob("stackexchange/*/Posts.xml")):
        sys.exit(f"ingest_scale: no {pool}/stackexchange/*/Posts.xml; pass --pool <dir> (the shared public data pool)")
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
