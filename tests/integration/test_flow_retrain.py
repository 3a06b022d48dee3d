"""The retrain flow: it retrains only when the ingest stage's data deps changed against dvc.lock, and keeps each
retrain as a DVC experiment named after its Prefect flow run."""

from __future__ import annotations

import doctest
import subprocess

import pytest

from tests.conftest import run_env
from tests.integration.test_flow import load_flow, read_artifacts


def test_data_deps_are_told_from_code_and_params():
    flow_mod = load_flow("retrain")
    assert doctest.testmod(flow_mod).failed == 0
    status = {
        "ingest": [
            {
                "changed deps": {
                    "src/lessismore/sources": "modified",
                    "params.yaml": {"ingest": "new"},
                    "s3://bucket/dump.xml": "modified",
                    "data/sources": "new",
                }
            },
            {"changed outs": {"data/ingested": "deleted"}},
        ]
    }
    assert flow_mod.changed_data(status) == {"s3://bucket/dump.xml": "modified", "data/sources": "new"}
    assert flow_mod.changed_data({}) == {} and flow_mod.changed_data({"ingest": ["changed checksum"]}) == {}


def _exp_names(repo) -> list[str]:
    out = subprocess.run(
        ["dvc", "exp", "list", "--name-only"], cwd=repo, env=run_env(), capture_output=True, text=True, check=True
    ).stdout
    return out.split()


@pytest.mark.slow
def test_retrain_only_when_sources_change_and_each_is_an_experiment(prefect_harness, pipeline_repo, monkeypatch):
    for key, value in run_env().items():  # the stages' subprocesses need the venv's python on PATH
        monkeypatch.setenv(key, value)
    flow_mod, root = load_flow("retrain"), str(pipeline_repo)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True).stdout

    # never ingested: the sources are new against dvc.lock -> the whole pipeline runs, kept as an experiment
    state = flow_mod.retrain(root=root, return_state=True)
    assert state.is_completed(), state.message
    first, run_id = state.result(), str(state.state_details.flow_run_id)
    assert first["status"] == "retrained" and first["changed"] == {"data/sources": "modified"}
    assert set(first["stages"].values()) == {"ran"} and first["experiment"] == f"retrain-{run_id[:8]}"
    assert first["experiment"] in _exp_names(root)

    # unchanged: nothing runs, and the run says so in an artifact
    lock = (pipeline_repo / "dvc.lock").read_text()
    state = flow_mod.retrain(root=root, return_state=True)
    assert state.result() == {"status": "unchanged", "changed": {}}
    assert "unchanged" in read_artifacts(state.state_details.flow_run_id)["retrain"].data
    # code alone does not trigger a retrain either (a deliberate change: `dvc repro`)
    script = pipeline_repo / "stages/ingest.py"
    script.write_text(script.read_text() + "\n# a comment\n")
    assert flow_mod.retrain(root=root)["status"] == "unchanged"
    assert (pipeline_repo / "dvc.lock").read_text() == lock and len(_exp_names(root)) == 1

    # a new file under data/sources: ingest re-runs (its output is the same, so DVC skips the rest)
    (pipeline_repo / "data/sources/handwritten/NOTES.md").write_text("where these examples came from\n")
    state = flow_mod.retrain(root=root, return_state=True)
    third, run_id = state.result(), str(state.state_details.flow_run_id)
    assert third["status"] == "retrained" and third["stages"]["ingest"] == "ran"
    assert set(third["stages"].values()) - {"ran"} == {"skipped (unchanged)"}
    assert third["experiment"] == f"retrain-{run_id[:8]}" and third["experiment"] in _exp_names(root)
    # the experiment commit carries the new source file and the metrics; HEAD and the workspace stay as they were
    files = subprocess.run(
        ["git", "show", "--name-only", "--format=", third["rev"]], cwd=root, capture_output=True, text=True, check=True
    ).stdout.split()
    assert "data/sources/handwritten/NOTES.md" in files and "stages/ingest.py" in files
    assert subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True).stdout == head
    assert "experiment" in read_artifacts(state.state_details.flow_run_id)["retrain"].data
