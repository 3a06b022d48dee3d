"""`make serve` for real: a Prefect server on 127.0.0.1, the work pools, `prefect deploy` of prefect.yaml and a worker
(infra/prefect/serve.sh), plus a second worker on the GPU pool. The pipeline deployment runs the whole tiny pipeline
with train and generate routed to the GPU pool; the runs, their work pools and the artifacts are read back through
the REST API. A GPU-pool run that fails fails the pipeline with a message naming it; one that no worker takes is
cancelled after the pickup timeout, and the pipeline says which pool needs a worker. The docker and kubernetes GPU
templates in infra/work-pools are accepted by the server as work pools."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from contextlib import contextmanager

import httpx
import pytest

from tests.conftest import run_env
from tests.servers import free_port

pytestmark = pytest.mark.slow
GPU = "lessismore-stage/stage-gpu"


def _wait_for(path, needle: str, proc, seconds: float) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        text = path.read_text(errors="replace") if path.exists() else ""
        if needle in text:
            return text
        assert proc.poll() is None, f"{proc.args} exited early:\n{text[-3000:]}"
        time.sleep(1)
    raise AssertionError(f"{needle!r} not seen in {seconds} s:\n{path.read_text(errors='replace')[-3000:]}")


@contextmanager
def _group(cmd: list[str], cwd, env, log):
    """A process in its own process group (its flow-run children too), stopped with the group afterwards."""
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
                proc.wait(timeout=30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass


def _run_deployment(api_env: dict, cwd, *params: str) -> tuple[int, str, str]:
    """`prefect deployment run --watch`, as a user types it: (exit code, output, the flow run id)."""
    args = [a for p in params for a in ("--param", p)]
    run = subprocess.run(
        ["prefect", "deployment", "run", "lessismore-pipeline/pipeline", *args, "--watch", "--watch-timeout", "400"],
        cwd=cwd,
        env=api_env,
        capture_output=True,
        text=True,
        timeout=450,
    )
    found = re.search(r"UUID: ([0-9a-f-]{36})", run.stdout)
    assert found, run.stdout[-3000:] + run.stderr[-3000:]
    return run.returncode, run.stdout + run.stderr, found.group(1)


def test_serve_deploys_and_workers_run_the_pipeline_with_gpu_stages_on_the_gpu_pool(pipeline_repo, tmp_path):
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    home = str(tmp_path / "prefect_home")
    # workers poll every 2 s (not 10): the GPU stages' runs are picked up sooner
    env = {**run_env(), "PREFECT_PORT": str(port), "PREFECT_HOME": home, "PREFECT_WORKER_QUERY_SECONDS": "2"}
    env.pop("PREFECT_API_URL", None)
    api_env = {**env, "PREFECT_API_URL": api_url}
    with (
        _group(["bash", "infra/prefect/serve.sh"], pipeline_repo, env, tmp_path / "serve.log") as serve,
        httpx.Client(base_url=api_url, timeout=30) as api,
    ):
        _wait_for(tmp_path / "serve.log", "started!", serve, 180)  # the worker's start line comes after the deploy
        gpu_log = tmp_path / "gpu-worker.log"
        worker = ["prefect", "worker", "start", "--pool", "lessismore-gpu", "--name", "gpu-worker"]
        with _group(worker, pipeline_repo, api_env, gpu_log) as gpu:
            _wait_for(gpu_log, "started!", gpu, 60)

            code, out, run_id = _run_deployment(api_env, pipeline_repo, f"gpu_deployment={GPU}")
            assert code == 0 and "Completed" in out, out[-3000:]
            pipeline = api.get(f"/flow_runs/{run_id}").json()
            assert pipeline["state_type"] == "COMPLETED" and pipeline["work_pool_name"] == "lessismore-process"
            assert (pipeline_repo / "reports/index.html").exists()  # the worker ran in the deployment's checkout

            # train and each model's generate@<model> ran as their own flow runs, picked up by the GPU pool's worker
            children = api.post("/flow_runs/filter", json={"flow_runs": {"parent_flow_run_id": {"any_": [run_id]}}})
            children = {r["parameters"]["stage"]: r for r in children.json()}
            assert set(children) == {"train", "generate@finetuned", "generate@base"}
            for child in children.values():
                assert child["work_pool_name"] == "lessismore-gpu" and child["state_type"] == "COMPLETED"
                assert child["state"]["message"] == "ran"
            assert gpu_log.read_text().count("Completed") >= 3

            artifacts = api.post("/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [run_id]}}}).json()
            keys = {a["key"] for a in artifacts}
            assert keys >= {"win-tie-loss", "curation-funnel", "lineage", "report"}

            # a GPU-pool run that fails (its input is gone) fails the pipeline, naming the stage and the run
            subprocess.run(["rm", "-rf", "models/base"], cwd=pipeline_repo, check=True)
            code, out, run_id = _run_deployment(
                api_env, pipeline_repo, 'stages=["train"]', "force=true", f"gpu_deployment={GPU}"
            )
            failed = api.get(f"/flow_runs/{run_id}").json()
            assert code != 0 and failed["state_type"] == "FAILED"
            assert f"stage 'train' on deployment '{GPU}'" in failed["state"]["message"]
            assert "work pool lessismore-gpu" in failed["state"]["message"]

        # no worker on the GPU pool any more: the GPU stage's run is cancelled after the pickup timeout, and the
        # pipeline fails saying which pool needs a worker (rather than waiting forever)
        code, out, run_id = _run_deployment(
            api_env, pipeline_repo, 'stages=["train"]', "force=true", f"gpu_deployment={GPU}", "gpu_pickup_timeout_s=6"
        )
        failed = api.get(f"/flow_runs/{run_id}").json()
        assert code != 0 and failed["state_type"] == "FAILED"
        message = failed["state"]["message"]
        assert "no worker of work pool lessismore-gpu took it within 6 s; cancelled" in message, message
        assert "prefect worker start --pool lessismore-gpu" in message
        children = api.post("/flow_runs/filter", json={"flow_runs": {"parent_flow_run_id": {"any_": [run_id]}}})
        assert [c["state_type"] for c in children.json()] == ["CANCELLED"]  # it will not start on a later worker

        # the other deployments are there: the nightly retrain (inactive) and the ablation sweep
        retrain = api.get("/deployments/name/lessismore-retrain/retrain").json()
        assert [(s["schedule"]["cron"], s["active"]) for s in retrain["schedules"]] == [("0 3 * * *", False)]
        assert api.get("/deployments/name/lessismore-ablation/ablation").json()["work_pool_name"]
        # the GPU pools a user makes from infra/work-pools: the server takes the templates as they are
        for kind in ("docker", "kubernetes"):
            template = pipeline_repo / f"infra/work-pools/{kind}-gpu.json"
            create = ["prefect", "work-pool", "create", f"gpu-{kind}", "--type", kind, "--base-job-template", template]
            made = subprocess.run(create, env=api_env, capture_output=True, text=True)
            assert made.returncode == 0, made.stdout + made.stderr
            pool = api.get(f"/work_pools/gpu-{kind}").json()
            assert pool["type"] == kind and pool["base_job_template"] == json.loads(template.read_text())
