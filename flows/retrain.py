"""Prefect flow `retrain`: on a schedule, re-run the pipeline only when the sources changed; keep it as an experiment.

It compares the ingest stage's data deps (the deps of `ingest` in dvc.yaml that are not code: data/sources, or an
external s3:// dep) with their hashes in dvc.lock, through `dvc status ingest` (DVC's own hashing). Unchanged: it
returns "unchanged" at once, with a markdown artifact saying so. Changed (or never ingested): it runs the pipeline
flow (flows/pipeline.py, loaded by path: the same tasks, retries and GPU routing, as a subflow) and
then `dvc exp save --name retrain-<flow run id[:8]>`, so the result is an experiment tied to this Prefect run.

Why `dvc exp save` after the run rather than `dvc exp run --name`: the stages run in the workspace as Prefect tasks
(per-stage logs, retries, the GPU pool), and `exp save` then snapshots that workspace (dvc.lock, params, metrics,
the changed source files) as an experiment commit on top of HEAD without moving HEAD or touching the workspace.
The workspace's dvc.lock stays the one that matches its outputs, so the next scheduled run compares against the
sources it just trained on. Keep a result with `dvc exp apply` / `dvc exp branch`, or commit the workspace.

Code or params changes alone do NOT trigger a retrain: that is a deliberate change, run `dvc repro` or the pipeline
deployment for it. A source only named in params.yaml (an s3:// or hf:// path) has no hash in dvc.lock and is not
seen here: bring it under data/sources/ with `dvc import-url`, and `dvc update` it before this flow runs.
A leaf: nothing imports this file.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from prefect import flow, get_run_logger, runtime, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from lessismore.orchestration import changed_data, is_code, load_sibling  # noqa: F401

_pipeline = load_sibling(__file__, "pipeline.py")  # its tasks and flow, reused as a subflow

# ---------------------------------------------------------------------------------------------------------------
# tasks


def _git(root: str, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout


@task(cache_policy=NO_CACHE, persist_result=False)
def sources_changed(root: str, stage: str = "ingest") -> dict[str, str]:
    """The data deps of `stage` whose hash differs from dvc.lock (`dvc status`: DVC hashes them; nothing runs)."""
    cmd = [sys.executable, "-m", "dvc", "status", stage, "--json"]
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"`dvc status {stage}` failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return changed_data(json.loads(proc.stdout or "{}"), stage)


@task(cache_policy=NO_CACHE, persist_result=False)
def save_experiment(root: str, name: str, message: str, data_paths: list[str]) -> str:
    """`dvc exp save` of the workspace, with the untracked files an experiment needs (new source files, metrics)."""
    from dvc.repo import Repo

    with Repo(root) as repo:  # cache: false outs (metrics, plots) are what git must carry for `dvc exp show`
        kept = sorted({out.def_path for s in repo.index.stages for out in s.outs if not out.use_cache})
    untracked = _git(root, "ls-files", "--others", "--exclude-standard", "--", *data_paths, *kept).split()
    cmd = [sys.executable, "-m", "dvc", "exp", "save", "--json", "--name", name, "-m", message]
    proc = subprocess.run(cmd + [a for p in untracked for a in ("-I", p)], cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"`dvc exp save --name {name}` failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout)["ref"]


# ---------------------------------------------------------------------------------------------------------------
# the flow


@flow(name="lessismore-retrain", log_prints=True)
def retrain(
    root: str = ".",
    gpu_stages: tuple[str, ...] = _pipeline.GPU_STAGES,
    gpu_deployment: str | None = None,
    retry_delay_s: float = 30.0,
) -> dict:
    """Retrain when the ingest stage's data deps changed against dvc.lock; record the run as a DVC experiment."""
    logger = get_run_logger()
    changed = sources_changed(root)
    if not changed:
        create_markdown_artifact(
            "Sources unchanged since dvc.lock (the ingest stage's data deps): nothing to do.",
            key="retrain",
            description="retrain: unchanged",
        )
        logger.info("sources unchanged: no retrain")
        return {"status": "unchanged", "changed": {}}
    logger.info("sources changed: %s", changed)
    result = _pipeline.pipeline(
        root=root, gpu_stages=gpu_stages, gpu_deployment=gpu_deployment, retry_delay_s=retry_delay_s
    )
    run_id = runtime.flow_run.id or "local"
    name = f"retrain-{run_id[:8]}"
    rev = save_experiment(root, name, f"retrain: Prefect flow run {run_id}; changed {sorted(changed)}", list(changed))
    rows = "\n".join(f"| `{path}` | {what} |" for path, what in sorted(changed.items()))
    create_markdown_artifact(
        f"Sources changed; retrained. DVC experiment **{name}** (`{rev}`): "
        f"`dvc exp show`, `dvc exp apply {name}`.\n\n| data dep | change |\n|---|---|\n{rows}",
        key="retrain",
        description="retrain: the DVC experiment",
    )
    return {"status": "retrained", "changed": changed, "experiment": name, "rev": rev, "stages": result["stages"]}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=".", help="the repository root (where dvc.yaml is)")
    print(json.dumps(retrain(root=parser.parse_args().root), indent=2))
