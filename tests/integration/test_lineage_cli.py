"""`lessismore lineage` and `lessismore explain` on a real repository: this project's pipeline (tiny profile) in a
fresh git + DVC repo, `dvc repro curate` (ingest -> validate -> curate, seconds), then the CLI against its dvc.lock
and the files those stages wrote."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from lessismore.cli import app
from tests.conftest import make_pipeline_repo, run_env

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    root = make_pipeline_repo(tmp_path_factory.mktemp("lineage") / "repo")
    subprocess.run(["dvc", "repro", "curate"], cwd=root, env=run_env(), check=True, capture_output=True)
    return root


def _cli(repo: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner(env={"COLUMNS": "250"}).invoke(app, [*args, "--root", str(repo)])
    return result.exit_code, result.stdout, result.stderr


def _lock(repo: Path) -> dict:
    return yaml.safe_load((repo / "dvc.lock").read_text())["stages"]


def _md5s(entries: list[dict]) -> dict[str, str]:
    return {e["path"]: e["md5"] for e in entries}


def test_lineage_of_a_metric_reaches_the_source_files_with_dvc_locks_hashes(repo):
    code, out, err = _cli(repo, "lineage", "metrics/curate.json:counts.selected", "--json")
    assert code == 0, err
    result, lock = json.loads(out), _lock(repo)
    assert result["value"] == json.loads((repo / "metrics/curate.json").read_text())["counts"]["selected"] == 24
    assert result["on_disk"] == "as in dvc.lock"
    assert [n["stage"] for n in result["chain"]] == ["curate", "validate", "model", "ingest"]  # model: the scorers
    for node in result["chain"]:  # every dep's hash is the one dvc.lock recorded for that stage
        assert {d["path"]: d["md5"] for d in node["deps"]} == _md5s(lock[node["stage"]]["deps"])
        assert not any(d["stale"] for d in node["deps"])
    assert result["chain"][0]["params"]["curate.budget"] == 24
    curate_deps = {d["path"]: d["from"] for d in result["chain"][0]["deps"]}
    assert curate_deps["data/validated"] == "validate" and curate_deps["stages/curate.py"] is None
    assert curate_deps["models/base"] == "model"
    sources = {s["path"]: s for s in result["sources"]}
    assert sources["data/sources"]["md5"] == _md5s(lock["ingest"]["deps"])["data/sources"]
    assert sources["data/sources"]["kind"] == "data" and sources["data/sources"]["used_by"] == ["ingest"]
    assert {"stages/ingest.py", "src/lessismore/validate", "src/lessismore/curate"} <= set(sources)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    assert result["git"]["commit"] == head


def test_lineage_tree_names_each_stage_hash_and_the_commit(repo):
    code, out, _ = _cli(repo, "lineage", "data/curated")
    lock = _lock(repo)
    assert code == 0
    for stage in ("curate", "validate", "ingest"):
        assert f"stage {stage}" in out
    assert (
        _md5s(lock["ingest"]["deps"])["data/sources"] in out and _md5s(lock["curate"]["outs"])["data/curated"] in out
    )
    assert "curate.budget = 24" in out and "(source)" in out and "git commit " in out


def test_lineage_of_unknown_targets_lists_what_exists(repo):
    code, _, err = _cli(repo, "lineage", "metrics/curat.json")
    assert code == 2 and "did you mean metrics/curate.json" in err and "data/quarantine/curate.jsonl" in err
    code, _, err = _cli(repo, "lineage", "metrics/curate.json:counts.kept")
    assert code == 2 and "no key 'kept' under counts" in err and "selected" in err
    code, _, err = _cli(repo, "lineage", "models/finetuned")  # the train stage has not run here
    assert code == 2 and "not an output" in err


def test_explain_a_kept_and_a_dropped_example(repo):
    kept = json.loads((repo / "data/curated/train.jsonl").read_text().splitlines()[0])
    code, out, err = _cli(repo, "explain", kept["id"][:10], "--json")
    assert code == 0, err
    story = json.loads(out)
    assert story["verdict"] == "kept: in the training set" and story["origin"] == kept["origin"]
    assert [s["stage"] for s in story["steps"]] == ["ingest", "validate", "curate"]
    assert story["kept"]["line"] == 1 and story["kept"]["source"] == kept["origin"]["source"]

    dropped = json.loads((repo / "data/quarantine/curate.jsonl").read_text().splitlines()[0])
    code, out, _ = _cli(repo, "explain", dropped["record"]["id"])
    assert code == 0
    assert f"dropped at curate: {dropped['reason'].split(':')[0]}" in out and dropped["detail"][:60] in out
    assert dropped["origin"]["file"] in out and dropped["origin"]["license"] in out


def test_explain_unknown_and_ambiguous_ids(repo):
    code, _, err = _cli(repo, "explain", "zzzz")
    assert code == 2 and "no example, prompt or quarantined record" in err and "data/curated/train.jsonl" in err
    code, _, err = _cli(repo, "explain", "")
    assert code == 2 and "give more characters" in err
