"""The ablation flow: curate.variant x curate.budget as real `dvc exp run --temp` experiments, the curve in
metrics/ablation.json (the report's contract), and the report rebuilt over it."""

from __future__ import annotations

import doctest
import json
import subprocess
import time

import pytest

from tests.conftest import run_env
from tests.integration.test_flow import load_flow, read_artifacts

JUDGE = {
    "primary": "j1",
    "baselines": {
        "base": {
            "n": 36,
            "win": 0.5,
            "tie": 0.25,
            "loss": 0.25,
            "invalid": 0,
            "ci": {"win": [0.3, 0.7], "tie": [0.1, 0.4], "loss": [0.1, 0.4]},
        },
        "other": {"n": 1, "win": 1.0, "tie": 0.0, "loss": 0.0},
    },
}


def test_points_follow_the_report_contract():
    flow_mod = load_flow("ablation")
    assert doctest.testmod(flow_mod).failed == 0
    where = {"exp": "abl-lima-8", "rev": "b2", "variant": "lima", "budget": 8, "prefect_run": "r"}
    doc = flow_mod.curve(
        [
            flow_mod.ablation_point(JUDGE, **where | {"budget": 16, "exp": "abl-lima-16"}),
            flow_mod.ablation_point(JUDGE, **where),
        ]
    )
    assert doc["baseline"] == "base" and doc["judge"] == "j1" and doc["metric"] == "win"
    assert [p["budget"] for p in doc["points"]] == [8, 16]  # sorted by N
    assert doc["points"][0] == where | {
        "n": 36,
        "win": 0.5,
        "tie": 0.25,
        "loss": 0.25,
        "ci": {"win": [0.3, 0.7], "loss": [0.1, 0.4]},
    }
    assert flow_mod.curve([]) == {"baseline": None, "judge": None, "metric": "win", "points": []}


@pytest.mark.slow
def test_two_budgets_become_experiments_and_the_curve_reaches_the_report(prefect_harness, pipeline_repo, monkeypatch):
    for key, value in run_env().items():  # the stages' subprocesses need the venv's python on PATH
        monkeypatch.setenv(key, value)
    flow_mod, root, started = load_flow("ablation"), str(pipeline_repo), time.time()
    params = (pipeline_repo / "params.yaml").read_text()

    state = flow_mod.ablation(root=root, variants=["lima", "scored"], budgets=[8, 4], return_state=True)
    assert state.is_completed(), state.message
    run_id = str(state.state_details.flow_run_id)

    doc = json.loads((pipeline_repo / "metrics/ablation.json").read_text())
    assert doc["judge"] == "tiny-random-local" and doc["baseline"] == "base" and doc["metric"] == "win"
    assert [(p["exp"], p["variant"], p["budget"]) for p in doc["points"]] == [
        ("abl-lima-4", "lima", 4),
        ("abl-lima-8", "lima", 8),
        ("abl-scored-4", "scored", 4),
        ("abl-scored-8", "scored", 8),
    ]
    show = subprocess.run(
        ["dvc", "exp", "show", "--json"], cwd=root, env=run_env(), capture_output=True, text=True, check=True
    ).stdout
    assert flow_mod.exp_revs(json.loads(show)) == {p["exp"]: p["rev"] for p in doc["points"]}
    for point in doc["points"]:
        assert point["prefect_run"] == run_id and point["n"] > 0
        assert abs(point["win"] + point["tie"] + point["loss"] - 1) < 1e-9 and len(point["ci"]["win"]) == 2
        # each experiment trained on its own budget: its curate metrics say so
        curate = subprocess.run(
            ["git", "show", f"{point['rev']}:metrics/curate.json"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert json.loads(curate)["funnel"][-1]["n"] == point["budget"]
        assert json.loads(curate)["variant"] == point["variant"]
        assert bool(json.loads(curate)["scores"]) == (point["variant"] == "scored")  # chosen by scores, or not

    # the workspace kept its own params; the report was rebuilt after the curve was written
    assert (pipeline_repo / "params.yaml").read_text() == params
    assert state.result()["stages"]["report"] == "ran"
    page = pipeline_repo / "reports/index.html"
    assert page.stat().st_mtime > started
    html = page.read_text()
    assert 'id="ablation"' in html and "abl-lima-4" in html and "abl-scored-8" in html  # the report drew the curve
    artifact = read_artifacts(run_id)["ablation-curve"]
    assert [(r["variant"], r["budget"]) for r in json.loads(artifact.data)] == [
        ("lima", 4),
        ("lima", 8),
        ("scored", 4),
        ("scored", 8),
    ]
