"""data.workers on the local engine: ingest (its sources read by worker processes, spooled in the work folder),
validate (the example shards checked by workers, each with its own GX session) and curate (each batch prescreened,
each spill shard read back, the signatures computed by workers) write the same bytes with two worker processes as
all in the stage's process, and leave no spool behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import make_pipeline_repo, run_env

pytestmark = pytest.mark.slow
OUTPUTS = (
    "data/ingested",
    "data/quarantine/ingest.jsonl",
    "metrics/ingest.json",
    "data/validated",
    "data/quarantine/validate.jsonl",
    "metrics/validate.json",
    "data/curated/train.jsonl",
    "data/curated/README.md",
    "data/quarantine/curate.jsonl",
    "metrics/curate.json",
)


def _bytes(root: Path, rel: str) -> dict[str, bytes]:
    path = root / rel
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


def _workers(repo: Path, n: int) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["data"] |= {"workers": n, "shard_rows": 40, "batch_rows": 7}  # several shards, batches and jobs
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_two_worker_processes_write_what_one_process_writes(tmp_path):
    repos = {n: make_pipeline_repo(tmp_path / f"w{n}") for n in (1, 2)}
    for n, repo in repos.items():
        _workers(repo, n)
    said = {}
    for stage in ("ingest", "validate", "curate"):
        for n, repo in repos.items():
            cmd = [sys.executable, f"stages/{stage}.py"]
            done = subprocess.run(cmd, cwd=repo, env=run_env(), capture_output=True, text=True, timeout=900)
            assert done.returncode == 0, f"{stage} with {n} worker(s): {done.stderr[-3000:]}"
            said[stage, n] = done.stdout
    assert "read by 2 worker processes" in said["ingest", 2] and "worker" not in said["ingest", 1]
    assert "checked by 2 worker processes" in said["validate", 2] and "worker" not in said["validate", 1]
    for rel in OUTPUTS:
        assert _bytes(repos[2], rel) == _bytes(repos[1], rel), f"{rel} differs with two workers"
    assert len(_bytes(repos[2], "data/validated/examples")) > 2  # the shards did go to the workers
    assert not (repos[2] / ".lessismore").exists()  # the spools went with the work folder
