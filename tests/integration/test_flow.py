"""The Prefect flow drives the real DVC stages, one task per stage, and publishes its artifacts."""

from __future__ import annotations

import importlib.util
import json
import os

import pytest

from tests.conftest import REPO, run_env

pytestmark = pytest.mark.slow


def _load_flow_module():
    """flows/ is a leaf: load the file by path, as Prefect's own deployment loader does."""
    spec = importlib.util.spec_from_file_location("lessismore_pipeline_flow", REPO / "flows" / "pipeline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dag_order_puts_every_stage_after_its_upstreams():
    import yaml

    order = _load_flow_module().dag_order(str(REPO))
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    assert sorted(order) == sorted(stages)
    outs = {
        name: [o if isinstance(o, str) else next(iter(o)) for o in s.get("outs", []) + s.get("metrics", [])]
        for name, s in stages.items()
    }
    for name, stage in stages.items():
        for dep in stage["deps"]:
            for upstream, paths in outs.items():
                if any(dep == p or dep.startswith(p + "/") for p in paths):
                    assert order.index(upstream) < order.index(name), f"{upstream} must run before {name}"


def test_flow_runs_every_stage_and_publishes_artifacts(prefect_harness, pipeline_repo, monkeypatch):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    for key, value in run_env().items():  # the stages' subprocesses need the venv's python on PATH
        monkeypatch.setenv(key, value)
    flow_mod = _load_flow_module()

    state = flow_mod.pipeline(root=str(pipeline_repo), return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    assert list(result["stages"]) == flow_mod.dag_order(str(pipeline_repo))
    assert set(result["stages"].values()) == {"ran"}
    assert result["report"].endswith("reports/index.html") and os.path.exists(result["report"])
    judge = json.loads((pipeline_repo / "metrics/judge.json").read_text())
    assert result["win_tie_loss"][0]["pairs"] == judge["baselines"]["base"]["n"]

    # a second run: DVC owns caching, so every stage is skipped
    again = flow_mod.pipeline(root=str(pipeline_repo))
    assert set(again["stages"].values()) == {"skipped (unchanged)"}

    async def artifacts():
        async with get_client() as client:
            return await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["win-tie-loss", "report"]))
            )

    import asyncio

    found = asyncio.run(artifacts())
    assert {a.key for a in found} == {"win-tie-loss", "report"}
    table = next(a for a in found if a.key == "win-tie-loss")
    assert "base" in str(table.data)
