"""The pipeline flow drives the real DVC stages, one task per stage: retries only where a stage calls an outside
service, artifacts through the Prefect API, and a clear failure when the GPU deployment is missing."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os

import pytest
import yaml

from tests.conftest import REPO, run_env


def load_flow(name: str = "pipeline"):
    """flows/ is a leaf: load the file by path, as Prefect's own deployment loader does."""
    spec = importlib.util.spec_from_file_location(f"lessismore_flow_{name}", REPO / "flows" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_artifacts(flow_run_id) -> dict:
    """Every artifact of one flow run (and its task runs), by key, read back through the API."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    async def read():
        async with get_client() as client:
            flt = ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
            return await client.read_artifacts(artifact_filter=flt)

    return {a.key: a for a in asyncio.run(read())}


def test_dag_order_puts_every_stage_after_its_upstreams():
    """Every stage instance (generate@finetuned...) after each stage whose outs it reads, a folder dep too."""
    from dvc.repo import Repo

    order = load_flow().dag_order(str(REPO))
    with Repo(str(REPO)) as repo:
        resolved = {s.name: s for s in repo.index.stages}
        outs = {name: [str(o.def_path) for o in s.outs] for name, s in resolved.items()}
        deps = {name: [str(d.def_path) for d in s.deps] for name, s in resolved.items()}
    assert sorted(order) == sorted(resolved)
    assert {"generate@finetuned", "generate@base", "judge"} <= set(order)
    written = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    assert {s.split("@")[0] for s in order} == set(written) - {"import"}  # the demo imports no published answers
    for name in order:
        for dep in deps[name]:
            for upstream, paths in outs.items():
                if any(dep == p or dep.startswith(p + "/") or p.startswith(dep + "/") for p in paths):
                    assert order.index(upstream) < order.index(name), f"{upstream} must run before {name}"
    assert order.index("generate@base") < order.index("judge")  # judge reads outputs/responses, the folder


def test_only_stages_that_call_outside_services_get_retries():
    flow_mod = load_flow()
    stages = [
        "ingest",
        "validate",
        "curate",
        "model",
        "train",
        "generate@finetuned",
        "generate@base",
        "judge",
        "report",
    ]
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    assert flow_mod.retry_policy(params, stages) == dict.fromkeys(stages, 0)  # the embedded default is all local

    params["ingest"]["sources"][0]["path"] = "s3://bucket/Posts.xml"
    params["judge"]["judges"].append({"name": "gpt-4o", "backend": "openai", "model": "gpt-4o"})
    policy = flow_mod.retry_policy(params, stages)
    assert {s for s, n in policy.items() if n} == {"ingest", "judge"}
    assert policy["ingest"] == policy["judge"] == flow_mod.RETRIES > 0

    params["ingest"]["sources"][0]["path"] = "hf://GAIR/lima"
    params["generate"]["backend"] = "openai"
    params["train"] |= {"select": "judge", "select_judge": {"name": "j", "backend": "openai", "model": "m"}}
    assert flow_mod.external_stages(params) == {"ingest", "generate", "judge", "train"}
    assert flow_mod.retry_policy(params, stages)["generate@base"] == flow_mod.RETRIES  # every instance of generate


def test_artifact_rows_from_the_metrics():
    flow_mod = load_flow()
    funnel = {
        "funnel": [
            {"step": "validated", "n": 10, "per_source": {"a": 6, "b": 4}},
            {"step": "selected", "n": 4, "per_source": {"a": 4}},
        ]
    }
    assert flow_mod.funnel_rows(funnel) == [
        {"step": "validated", "n": 10, "dropped": 0, "a": 6, "b": 4},
        {"step": "selected", "n": 4, "dropped": 6, "a": 4, "b": 0},
    ]
    checkpoint = {"what": "checkpoint", "stage": "train", "path": "models/finetuned", "md5": "9f.dir", "size": 3}
    table = {
        "artifacts": [checkpoint],
        "params": {"curate": {"curate.budget": 96, "ingest.sources": ["x" * 300]}},
        "git": {"commit": "abc123", "dirty": True},
    }
    md = flow_mod.lineage_markdown(table)
    assert (
        "`abc123` (uncommitted changes)" in md and "| checkpoint | `models/finetuned` | train | `9f.dir` | 3 |" in md
    )
    assert "| curate | `curate.budget` | `96` |" in md and "(whole in dvc.lock)" in md


@pytest.mark.slow
def test_flow_runs_every_stage_and_publishes_artifacts(prefect_harness, pipeline_repo, monkeypatch):
    for key, value in run_env().items():  # the stages' subprocesses need the venv's python on PATH
        monkeypatch.setenv(key, value)
    flow_mod = load_flow()

    state = flow_mod.pipeline(root=str(pipeline_repo), return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    assert list(result["stages"]) == flow_mod.dag_order(str(pipeline_repo))
    assert set(result["stages"].values()) == {"ran"}
    assert result["report"].endswith("reports/index.html") and os.path.exists(result["report"])
    judge = json.loads((pipeline_repo / "metrics/judge.json").read_text())
    assert result["win_tie_loss"][0]["pairs"] == judge["baselines"]["base"]["n"]

    found = read_artifacts(state.state_details.flow_run_id)
    assert set(found) >= {"win-tie-loss", "curation-funnel", "lineage", "report"}
    assert found["win-tie-loss"].type == "table" and "base" in str(found["win-tie-loss"].data)
    curate = json.loads((pipeline_repo / "metrics/curate.json").read_text())
    funnel = json.loads(found["curation-funnel"].data)
    assert [r["step"] for r in funnel] == [s["step"] for s in curate["funnel"]] and funnel[-1]["n"] == 24
    lock = yaml.safe_load((pipeline_repo / "dvc.lock").read_text())
    final = next(o["md5"] for o in lock["stages"]["train"]["outs"] if o["path"] == "models/finetuned")
    assert f"`{final}`" in found["lineage"].data and "curate.budget" in found["lineage"].data
    assert f"({(pipeline_repo / 'reports/index.html').as_uri()})" in found["report"].data  # a markdown link

    # a second run: DVC owns caching, so every stage is skipped
    again = flow_mod.pipeline(root=str(pipeline_repo))
    assert set(again["stages"].values()) == {"skipped (unchanged)"}


@pytest.mark.slow
def test_an_external_stage_is_retried_and_then_fails_clearly(prefect_harness, pipeline_repo, monkeypatch):
    """A source on the Hub that is not in the offline cache: ingest is external, so it runs 1 + RETRIES times."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    for key, value in run_env().items():
        monkeypatch.setenv(key, value)
    params = yaml.safe_load((pipeline_repo / "params.yaml").read_text())
    params["ingest"]["sources"].append(
        {"name": "hub", "format": "lima_jsonl", "path": "hf://nobody/missing", "split": "train"}
    )
    (pipeline_repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    flow_mod = load_flow()

    state = flow_mod.pipeline(
        root=str(pipeline_repo), stages=["ingest", "validate"], retry_delay_s=0, return_state=True
    )
    assert state.is_failed()
    assert "dvc stage 'ingest' failed" in state.message or "ingest" in str(state.result(raise_on_failure=False))

    async def task_runs():
        async with get_client() as client:
            flt = FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
            return await client.read_task_runs(flow_run_filter=flt)

    runs = {t.name.rsplit("-", 1)[0]: t for t in asyncio.run(task_runs())}
    assert runs["dvc-ingest"].run_count == 1 + flow_mod.RETRIES and runs["dvc-ingest"].state.is_failed()
    assert "dvc-validate" not in runs  # nothing downstream of a failed stage starts
    assert not (pipeline_repo / "data/validated").exists()


@pytest.mark.slow
def test_a_missing_gpu_deployment_fails_before_any_stage_runs(prefect_harness, pipeline_repo, monkeypatch):
    for key, value in run_env().items():
        monkeypatch.setenv(key, value)
    state = load_flow().pipeline(root=str(pipeline_repo), gpu_deployment="lessismore-stage/nowhere", return_state=True)
    assert state.is_failed()
    with pytest.raises(ValueError, match="'lessismore-stage/nowhere' does not exist.*prefect --no-prompt deploy"):
        state.result()
    assert not (pipeline_repo / "data/ingested").exists()
