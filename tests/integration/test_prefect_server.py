"""`make serve` for real: a Prefect server on 127.0.0.1, the work pool, `prefect deploy` of prefect.yaml, a worker,
and a deployment run triggered through the API that the worker picks up and completes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

import pytest

from tests.conftest import run_env

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(path, needle: str, proc, seconds: float) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        text = path.read_text(errors="replace") if path.exists() else ""
        if needle in text:
            return text
        assert proc.poll() is None, f"serve.sh exited early:\n{text[-3000:]}"
        time.sleep(1)
    raise AssertionError(f"{needle!r} not seen in {seconds} s:\n{path.read_text(errors='replace')[-3000:]}")


def test_serve_deploys_and_a_worker_runs_the_pipeline_deployment(pipeline_repo, tmp_path):
    port = _free_port()
    env = {**run_env(), "PREFECT_PORT": str(port), "PREFECT_HOME": str(tmp_path / "prefect_home")}
    env.pop("PREFECT_API_URL", None)
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        serve = subprocess.Popen(
            ["bash", "infra/prefect/serve.sh"], cwd=pipeline_repo, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: server, worker and flow runs are stopped together
        )  # fmt: skip
    try:
        _wait_for(log, "started!", serve, 180)  # the worker's start line comes after the deploy
        api = {**env, "PREFECT_API_URL": f"http://127.0.0.1:{port}/api"}
        run = subprocess.run(
            ["prefect", "deployment", "run", "lessismore-pipeline/pipeline",
             "--param", 'stages=["ingest", "validate"]', "--watch", "--watch-timeout", "240"],
            cwd=pipeline_repo, env=api, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        assert "Completed" in run.stdout
        # the worker ran the real stages in the deployment's working directory (the pull step)
        assert (pipeline_repo / "data/validated/examples.parquet").exists()
        assert (pipeline_repo / "metrics/validate.json").exists()
        assert not (pipeline_repo / "models").exists(), "only the requested stages may run"
        nightly = subprocess.run(
            ["prefect", "deployment", "inspect", "lessismore-pipeline/nightly-retrain"],
            env=api, capture_output=True, text=True,
        )  # fmt: skip
        assert nightly.returncode == 0 and "0 3 * * *" in nightly.stdout  # the scheduled deployment is there too
    finally:
        os.killpg(serve.pid, signal.SIGTERM)
        try:
            serve.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        try:  # anything of the group still alive (a server mid-shutdown) must not outlive the test
            os.killpg(serve.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
