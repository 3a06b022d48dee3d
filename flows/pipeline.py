"""Prefect flow: the DVC pipeline, one task per DVC stage, in DAG order.

DVC owns caching and lineage: each task runs `dvc repro --single-item <stage>`, which is a no-op when the stage's
deps, params and outs are unchanged. Prefect adds orchestration: logs per stage, a run history, deployments and
schedules (prefect.yaml), and artifacts (the win/tie/loss table and a link to the report). Prefect's own result
caching is off on purpose (NO_CACHE): a second source of truth for "already done" would drift from dvc.lock.

Run it: `lessismore run` (or `python flows/pipeline.py`); deploy it: `make serve` then `prefect deploy --all`.
A leaf: nothing imports this file.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

# ---------------------------------------------------------------------------------------------------------------
# tasks


def dag_order(root: str) -> list[str]:
    """The stages of dvc.yaml in dependency order (upstream first)."""
    import networkx as nx
    from dvc.repo import Repo

    with Repo(root) as repo:
        graph = repo.index.graph  # edges point from a stage to the stages it depends on
        return [stage.name for stage in reversed(list(nx.topological_sort(graph))) if stage.name]


@task(cache_policy=NO_CACHE, persist_result=False)
def dvc_stage(stage: str, root: str, force: bool = False) -> str:
    """Reproduce one stage through the DVC CLI (a subprocess: DVC's own signal and lock handling stay intact)."""
    logger = get_run_logger()
    cmd = [sys.executable, "-m", "dvc", "repro", "--single-item", stage] + (["--force"] if force else [])
    proc = subprocess.Popen(cmd, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tail: list[str] = []
    for line in proc.stdout:  # stream the stage's output into the Prefect run log as it comes
        line = line.rstrip()
        if line:
            logger.info(line)
            tail = (tail + [line])[-20:]
    if proc.wait() != 0:
        raise RuntimeError(f"dvc stage {stage!r} failed (exit {proc.returncode}); last lines:\n" + "\n".join(tail))
    skipped = any("didn't change, skipping" in line for line in tail)
    return "skipped (unchanged)" if skipped else "ran"


@task(cache_policy=NO_CACHE, persist_result=False)
def publish(root: str) -> dict:
    """Artifacts a reader of the Prefect UI wants: the headline table and where the report is."""
    rootp = Path(root).resolve()
    judge = json.loads((rootp / "metrics/judge.json").read_text())
    rows = []
    for baseline, m in judge.get("baselines", {}).items():
        ci = m.get("ci", {})
        rows.append(
            {
                "candidate": judge.get("candidate", ""),
                "baseline": baseline,
                "win": round(m["win"], 3),
                "tie": round(m["tie"], 3),
                "loss": round(m["loss"], 3),
                "win 95% CI": ci.get("win", ""),
                "pairs": m.get("n", 0),
                "invalid": m.get("invalid", 0),
            }
        )
    create_table_artifact(rows, key="win-tie-loss", description=f"judge: {judge.get('judge', '?')}")
    report = rootp / "reports/index.html"
    create_link_artifact(report.as_uri(), link_text="report (reports/index.html)", key="report")
    create_markdown_artifact(
        f"Report: `{report}`\n\nOpen it in a browser; it is one self-contained page that works offline.",
        key="report-path",
    )
    return {"report": str(report), "win_tie_loss": rows}


# ---------------------------------------------------------------------------------------------------------------
# the flow


@flow(name="lessismore-pipeline", log_prints=True)
def pipeline(root: str = ".", force: bool = False, stages: list[str] | None = None) -> dict:
    """ingest -> validate -> curate -> model -> train -> generate -> judge -> report, each a DVC stage."""
    logger = get_run_logger()
    order = dag_order(root)
    unknown = sorted(set(stages or []) - set(order))
    if unknown:
        raise ValueError(f"unknown stage(s) {unknown}; dvc.yaml has {order}")
    status = {}
    for stage in order:
        if stages and stage not in stages:
            continue
        status[stage] = dvc_stage.with_options(name=f"dvc-{stage}")(stage, root, force)
        logger.info("stage %s: %s", stage, status[stage])
    # publish only what this run produced: a partial run must not re-announce an older win rate as its own
    summary = publish(root) if "report" in status else {}
    return {"stages": status, **summary}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=".", help="the repository root (where dvc.yaml is)")
    parser.add_argument("--force", action="store_true", help="re-run stages even when DVC says they are unchanged")
    parser.add_argument("--stage", action="append", help="run only this stage (repeatable)")
    args = parser.parse_args()
    result = pipeline(root=args.root, force=args.force, stages=args.stage)
    print(json.dumps(result["stages"], indent=2))
