"""Prefect flows: the DVC pipeline, one task per DVC stage in DAG order; and `stage`, one DVC stage as its own flow.

DVC owns caching and lineage: each task runs `dvc repro --single-item <stage>`, a no-op when the stage's deps,
params and outs are unchanged. Prefect adds orchestration: logs per stage, a run history, deployments and schedules
(prefect.yaml), retries on the stages that call services outside this machine (decided from params.yaml), and
artifacts (win/tie/loss, the curation funnel, the lineage, a link to the report). Prefect's own result caching is
off on purpose (NO_CACHE): a second source of truth for "already done" would drift from dvc.lock.

GPU stages on another work pool: with `gpu_deployment` set (e.g. "lessismore-stage/stage-gpu", the `stage` flow
deployed on the GPU pool), the stages in `gpu_stages` run there through `run_deployment`, one flow run each, and
this flow waits for it and fails if it fails. A run that no worker takes within `gpu_pickup_timeout_s` (no worker
polls the GPU pool) is cancelled, so it cannot start later on its own, and the pipeline fails saying which pool
needs a worker. Assumption: the GPU worker sees the SAME checkout at the same path
(LESSISMORE_ROOT: a shared volume, as infra/work-pools/*.json mount it), so it reads and writes the same
workspace, .dvc/cache and dvc.lock. Separate disks synced through the DVC remote alone are not enough: dvc.lock
itself would have to travel back through git; this flow does not do that.

Run it: `lessismore run` (or `python flows/pipeline.py`); deploy it: `make serve` (see prefect.yaml).
A leaf: nothing imports this file (flows/retrain.py and flows/ablation.py load it by path, as Prefect loads an
entrypoint, to reuse this flow and its tasks).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed

from lessismore import contract as c
from lessismore.contract import group
from lessismore.orchestration import (  # noqa: F401  (names the tests reach through this module)
    RETRIES,
    awaiting_worker,
    external_stages,
    funnel_rows,
    lineage_markdown,
    retry_policy,
    win_rows,
)

GPU_STAGES = ("train", "generate")  # dvc.yaml stages: every instance of generate (generate@<model>) runs there

# ---------------------------------------------------------------------------------------------------------------
# tasks


def dag_order(root: str) -> list[str]:
    """The stages of dvc.yaml in dependency order (upstream first)."""
    import networkx as nx
    from dvc.repo import Repo

    with Repo(root) as repo:
        graph = repo.index.graph  # edges point from a stage to the stages it depends on
        return [stage.name for stage in reversed(list(nx.topological_sort(graph))) if stage.name]


def read_params(root: str) -> dict[str, Any]:
    import yaml

    path = Path(root) / "params.yaml"
    return (yaml.safe_load(path.read_text(encoding="utf-8")) or {}) if path.exists() else {}


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


def stage_task(stage: str, retries: int, delay_s: float):
    """dvc_stage named after its stage, with its retries (delay_s, then doubling)."""
    return dvc_stage.with_options(
        name=f"dvc-{stage}", retries=retries, retry_delay_seconds=[delay_s * 2**i for i in range(retries)] or 0
    )


def run_on_pool(stage: str, root: str, force: bool, deployment: str, pickup_timeout_s: float) -> str:
    """One stage as a flow run of `deployment` (the GPU pool); waits for it; raises unless it completed.

    `pickup_timeout_s` > 0: a run still waiting for a worker after that long is cancelled and this raises.
    """
    import time

    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.states import Cancelled

    run = run_deployment(
        deployment, parameters={"stage": stage, "root": root, "force": force}, flow_run_name=f"dvc-{stage}", timeout=0
    )  # created (a child of this run), not awaited
    waiting_since = time.monotonic()
    with get_client(sync_client=True) as client:
        while not (run.state and run.state.is_final()):
            time.sleep(2)
            run = client.read_flow_run(run.id)
            if not awaiting_worker(run.state_type.value if run.state_type else None):
                waiting_since = time.monotonic()  # a worker has it; a retry sent back to the queue waits afresh
            elif pickup_timeout_s > 0 and time.monotonic() - waiting_since > pickup_timeout_s:
                pool = run.work_pool_name or "its work pool"
                why = f"no worker of work pool {pool} took it within {pickup_timeout_s:g} s"
                client.set_flow_run_state(run.id, Cancelled(message=why), force=True)  # it must not start later
                raise TimeoutError(
                    f"stage {stage!r} on deployment {deployment!r} (flow run {run.name} {run.id}): "
                    f"{why}; cancelled. Start one: `prefect worker start --pool {pool}`, or raise "
                    "gpu_pickup_timeout_s (0 waits as long as it takes)"
                )
    state = run.state
    if not state.is_completed():
        raise RuntimeError(
            f"stage {stage!r} on deployment {deployment!r} (flow run {run.name} {run.id}, work pool "
            f"{run.work_pool_name}) ended {state.name}: {state.message}; its log is under that flow "
            "run"
        )
    return f"{state.message or 'done'} (work pool {run.work_pool_name})"


def check_deployment(name: str) -> None:
    """Fail before any stage runs when the GPU deployment does not exist (not after hours of CPU stages)."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_deployment_by_name(name)
        except ObjectNotFound:
            hint = "deploy it: `prefect --no-prompt deploy --all` deploys lessismore-stage/stage-gpu"
            raise ValueError(f"gpu_deployment {name!r} does not exist on this Prefect server; {hint}") from None


@task(cache_policy=NO_CACHE, persist_result=False)
def publish(root: str, stages: list[str]) -> dict:
    """Artifacts for what this run covered: a partial run must not re-announce an older number as its own."""
    from lessismore.lineage import git_commit, lineage_table, read_lock, stage_lineage

    rootp, out = Path(root).resolve(), {}
    if "curate" in stages and (rootp / c.metrics("curate")).exists():
        curate = json.loads((rootp / c.metrics("curate")).read_text())
        create_table_artifact(funnel_rows(curate), key="curation-funnel", description="records left after each step")
    if "judge" in stages:
        judge = json.loads((rootp / c.metrics("judge")).read_text())
        out["win_tie_loss"] = win_rows(judge)
        create_table_artifact(out["win_tie_loss"], key="win-tie-loss", description=f"judge: {judge.get('primary')}")
    if "report" in stages:
        table = lineage_table(stage_lineage(read_lock(rootp / c.LOCK)), git_commit(rootp))
        create_markdown_artifact(lineage_markdown(table), key="lineage", description="dvc.lock hashes, params, git")
        out["report"] = str(rootp / c.REPORT)
        create_link_artifact(Path(out["report"]).as_uri(), link_text=f"report ({c.REPORT})", key="report")
    return out


# ---------------------------------------------------------------------------------------------------------------
# the flows


@flow(name="lessismore-stage", log_prints=True)
def stage(stage: str, root: str = ".", force: bool = False, retry_delay_s: float = 30.0):
    """One DVC stage as its own flow run: what the GPU work pool runs for the pipeline (train, generate)."""
    retries = retry_policy(read_params(root), [stage])[stage]
    status = stage_task(stage, retries, retry_delay_s)(stage, root, force)
    return Completed(message=status, data=status)  # the message reaches the pipeline through the API


@flow(name="lessismore-pipeline", log_prints=True)
def pipeline(
    root: str = ".",
    force: bool = False,
    stages: list[str] | None = None,
    gpu_stages: tuple[str, ...] = GPU_STAGES,
    gpu_deployment: str | None = None,
    gpu_pickup_timeout_s: float = 600.0,
    retry_delay_s: float = 30.0,
) -> dict:
    """ingest -> validate -> curate -> model -> train -> generate@<model> (+ import@<name>) -> judge -> report, each
    a DVC stage; `stages` names stages or instances (generate: all of generate@<model>)."""
    logger = get_run_logger()
    order = dag_order(root)  # a foreach stage's instances by their own names: generate@finetuned, import@gpt4
    unknown = sorted(set(stages or []) - set(order) - {group(s) for s in order})
    if unknown:
        raise ValueError(f"unknown stage(s) {unknown}; dvc.yaml has {order}")
    todo = [s for s in order if not stages or s in stages or group(s) in stages]  # "generate": every model's
    if gpu_deployment and {group(s) for s in todo} & set(gpu_stages):
        check_deployment(gpu_deployment)
    retries = retry_policy(read_params(root), todo)
    logger.info("retries: %s", {s: n for s, n in retries.items() if n} or "none (no stage calls an outside service)")
    status = {}
    for name in todo:
        if gpu_deployment and group(name) in gpu_stages:
            logger.info("stage %s: a flow run of %s, once a worker of its pool picks it up", name, gpu_deployment)
            status[name] = run_on_pool(name, root, force, gpu_deployment, gpu_pickup_timeout_s)
        else:
            status[name] = stage_task(name, retries[name], retry_delay_s)(name, root, force)
        logger.info("stage %s: %s", name, status[name])
    return {"stages": status, **publish(root, todo)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=".", help="the repository root (where dvc.yaml is)")
    parser.add_argument("--force", action="store_true", help="re-run stages even when DVC says they are unchanged")
    parser.add_argument("--stage", action="append", help="run only this stage (repeatable)")
    args = parser.parse_args()
    result = pipeline(root=args.root, force=args.force, stages=args.stage)
    print(json.dumps(result["stages"], indent=2))
