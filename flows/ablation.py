"""Prefect flow `ablation`: quality against the curated set's variant and size N (LIMA §5), as DVC experiments.

Each point is `dvc exp run --temp -S curate.variant=V -S curate.budget=N --name abl-V-N judge`, one at a time (no
celery queue): a copy of HEAD (plus the workspace's uncommitted changes to tracked files) in a temp dir, so the
workspace is never touched; stages whose deps did not change come from DVC's run cache (ingest, validate, model).
The target is `judge`: the point's number is the judge's headline, and the report is built once, over all points.
Then it reads each experiment's metrics/judge.json from its commit (the primary judge against the first baseline:
win / tie / loss, their 95% intervals, n), writes metrics/ablation.json (this flow run's id in every point), makes a
table artifact of the curve, and runs the pipeline flow, i.e. `dvc repro report`, so reports/index.html draws it.

A point whose experiment name already exists on HEAD is replaced (same commit, same params: the same point).
metrics/ablation.json holds this sweep only. Run the deployment on a GPU pool for real budgets.
A leaf: nothing imports this file.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, runtime, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from lessismore.contract import ABLATION
from lessismore.orchestration import ablation_point, curve, exp_revs, load_sibling  # noqa: F401

_pipeline = load_sibling(__file__, "pipeline.py")  # its tasks and flow, reused as a subflow
OUT = ABLATION

# ---------------------------------------------------------------------------------------------------------------
# tasks


def _dvc(root: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, capture_output=True, text=True)


@task(cache_policy=NO_CACHE, persist_result=False)
def run_point(root: str, variant: str, budget: int, target: str) -> str:
    """One `dvc exp run --temp` of the sweep; replaces an experiment of the same name on HEAD."""
    logger, name = get_run_logger(), f"abl-{variant}-{budget}"
    if name in _dvc(root, "exp", "list", "--name-only").stdout.split():
        logger.info("replacing experiment %s", name)
        _dvc(root, "exp", "remove", name)
    proc = _dvc(
        root,
        "exp",
        "run",
        "--temp",
        "-S",
        f"curate.variant={variant}",
        "-S",
        f"curate.budget={budget}",
        "--name",
        name,
        target,
    )
    for line in proc.stdout.splitlines():
        if line.strip() and "%|" not in line:  # the stages' own lines, without progress bars
            logger.info(line)
    if proc.returncode != 0:
        raise RuntimeError(f"experiment {name} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return name


@task(cache_policy=NO_CACHE, persist_result=False)
def collect(root: str, names: dict[str, tuple[str, int]], prefect_run: str | None) -> list[dict[str, Any]]:
    """Each experiment's judge headline, read from metrics/judge.json in its commit."""
    proc = _dvc(root, "exp", "show", "--json")
    if proc.returncode != 0:
        raise RuntimeError(f"`dvc exp show --json` failed:\n{proc.stderr[-2000:]}")
    revs, points = exp_revs(json.loads(proc.stdout)), []
    for name, (variant, budget) in names.items():
        rev = revs[name]
        text = subprocess.run(
            ["git", "show", f"{rev}:metrics/judge.json"], cwd=root, capture_output=True, text=True, check=True
        ).stdout
        where = {"exp": name, "rev": rev, "variant": variant, "budget": budget, "prefect_run": prefect_run}
        points.append(ablation_point(json.loads(text), **where))
    return points


# ---------------------------------------------------------------------------------------------------------------
# the flow


@flow(name="lessismore-ablation", log_prints=True)
def ablation(
    root: str = ".",
    variants: tuple[str, ...] = ("lima",),
    budgets: tuple[int, ...] = (250, 500, 1000, 2000),
    target: str = "judge",
    report: bool = True,
) -> dict:
    """Sweep curate.variant x curate.budget as DVC experiments; write metrics/ablation.json; rebuild the report."""
    run_id = runtime.flow_run.id
    names, failed = {}, []
    for variant in variants:
        for budget in budgets:
            state = run_point(root, variant, budget, target, return_state=True)
            if state.is_completed():
                names[state.result()] = (variant, budget)
            else:
                failed.append(f"abl-{variant}-{budget}: {state.message}")
    doc = curve(collect(root, names, run_id) if names else [])
    (Path(root) / OUT).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    rows = [{k: p[k] for k in ("variant", "budget", "win", "tie", "loss", "n", "exp")} for p in doc["points"]]
    create_table_artifact(rows, key="ablation-curve", description=f"{doc['judge']} vs {doc['baseline']}, per N")
    if failed:
        raise RuntimeError(f"{len(failed)} point(s) failed; {OUT} has the others:\n" + "\n".join(failed))
    stages = _pipeline.pipeline(root=root)["stages"] if report else {}
    return {**doc, "stages": stages}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=".", help="the repository root (where dvc.yaml is)")
    parser.add_argument("--variant", action="append", help="curate.variant to sweep (repeatable; default lima)")
    parser.add_argument("--budget", action="append", type=int, help="curate.budget to sweep (repeatable)")
    args = parser.parse_args()
    sweep = {"variants": tuple(args.variant or ["lima"])} | ({"budgets": tuple(args.budget)} if args.budget else {})
    result = ablation(root=args.root, **sweep)
    print(json.dumps(result["points"], indent=2))
