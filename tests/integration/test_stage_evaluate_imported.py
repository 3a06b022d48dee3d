"""Evaluating published outputs without training (issue 20, item 6), through `dvc repro judge` in a fresh git + DVC
repository: two answer files become the stages import@gpt4 and import@llama, and the judge compares them on a subset
of the test prompts (eval.prompts), with `generate.models: []`, so nothing is curated, trained or generated. The
judge is the tiny random model at models/base (the `model` stage: built, not trained)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lessismore import records
from tests.conftest import make_pipeline_repo, run_env
from tests.specs import judge_entry

pytestmark = pytest.mark.slow


def _dvc(repo: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "dvc", *args]
    return subprocess.run(cmd, cwd=repo, env=run_env(), capture_output=True, text=True, timeout=900)


def _answers(repo: Path, name: str, ambiguous: bool = False, suffix: str = "") -> None:
    """A just-eval file answering every test prompt of the repository's sources, by their ids."""
    prompts = [json.loads(line) for line in (repo / "data/sources/prompts/test.jsonl").read_text().splitlines()]
    rows = [
        {"id": i, "source_id": p["id"], "instruction": p["prompt"], "output": f"{name}: ok ({i}){suffix}"}
        for i, p in enumerate(prompts)
    ]
    if ambiguous:  # the same text as the second prompt, but its ids name another question: reported, never paired
        rows[1] |= {"source_id": "alpaca-77", "id": 77}
    (repo / "data" / "baselines" / f"{name}.json").write_text(json.dumps(rows, indent=1))


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> Path:
    repo = make_pipeline_repo(tmp_path_factory.mktemp("imported") / "repo")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["generate"] |= {
        "models": [],  # every compared system is imported: no generate@ stage, nothing trains
        "baselines": {
            "gpt4": {"format": "just_eval", "path": "data/baselines/gpt4.json"},
            "llama": {"format": "just_eval", "path": "data/baselines/llama.json"},
        },
    }
    judge = {"judges": [judge_entry(name="tiny", model="base", batch_size=4)], "primary": "tiny"}
    params["judge"] |= judge | {"candidate": "gpt4", "baselines": ["llama"], "injection": {"pairs": 1}}
    params["eval"] = {"prompts": {"first": 3}}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _answers(repo, "gpt4")
    _answers(repo, "llama", ambiguous=True)
    subprocess.run(["git", "add", "-A"], cwd=repo, env=run_env(), check=True)
    subprocess.run(["git", "commit", "-qm", "two published answer files"], cwd=repo, env=run_env(), check=True)
    done = _dvc(repo, "repro", "judge")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return repo


def test_two_published_output_files_are_judged_against_each_other_without_a_trained_model(imported):
    repo = imported
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    assert sorted(lock) == ["import@gpt4", "import@llama", "ingest", "judge", "model", "validate"]  # no train
    assert not (repo / "models" / "finetuned").exists() and not (repo / "data" / "curated").exists()
    deps = {d["path"] for d in lock["import@llama"]["deps"]}
    assert "data/baselines/llama.json" in deps and "data/baselines/gpt4.json" not in deps  # exactly its own file
    assert sorted(lock["import@llama"]["params"]["params.yaml"]) == ["eval.prompts", "generate.baselines.llama"]

    test = [json.loads(line)["id"] for line in (repo / "data/sources/prompts/test.jsonl").read_text().splitlines()]
    gpt4 = json.loads((repo / "metrics/generate/gpt4.json").read_text())
    llama = json.loads((repo / "metrics/generate/llama.json").read_text())
    assert gpt4["eval_prompts"] == {"rule": {"first": 3}, "prompts": 3, "of": len(test)}
    assert gpt4["kind"] == "imported" and gpt4["responses"] == 3 and llama["responses"] == 2
    assert llama["imported"]["ambiguous"] == 1 and llama["imported"]["unmatched"] == 1  # not paired: reported
    assert gpt4["imported"]["extra"] == len(test) - 3  # answers to prompts outside the subset are left out

    judgments = records.read_jsonl(repo / "outputs/judgments.jsonl", records.Judgment)
    prompts = {
        p.meta["id"]: p.id for p in records.read_parquet(repo / "data/validated/prompts.parquet", records.Prompt)
    }
    assert {j.prompt_id for j in judgments} == {prompts[test[0]], prompts[test[2]]}  # the first 3 but the ambiguous
    assert len(judgments) == 2 * 2 and {(j.model_a, j.model_b) for j in judgments} >= {("gpt4", "llama")}
    judge = json.loads((repo / "metrics/judge.json").read_text())
    assert judge["counts"]["pairs"] == 2 and set(judge["baselines"]) == {"llama"}


def test_a_changed_answer_file_re_runs_its_own_import_and_the_judge_only(imported):
    repo = imported
    _answers(repo, "llama", ambiguous=True, suffix=" Revised.")
    status = json.loads(_dvc(repo, "status", "judge", "--with-deps", "--json").stdout)  # judge and its upstream
    assert sorted(status) == ["import@llama"], status  # the judge follows once llama's answers change
    done = _dvc(repo, "repro", "judge")
    assert done.returncode == 0, done.stderr[-3000:]
    ran = {line.split("'")[1] for line in done.stdout.splitlines() if line.startswith("Running stage")}
    assert ran == {"import@llama", "judge"}, done.stdout
    answers = records.read_jsonl(repo / "outputs/responses/llama.jsonl", records.Response)
    assert answers and all(r.text.endswith("Revised.") for r in answers)


def test_an_unknown_prompt_id_stops_import_with_the_key_and_the_fix(imported):
    repo = imported
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["eval"] = {"prompts": {"ids": ["test-001", "lima-42"]}}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    cmd = [sys.executable, "stages/import.py", "gpt4"]
    done = subprocess.run(cmd, cwd=repo, env=run_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "eval.prompts.ids: ['lima-42'] are not test prompts" in done.stderr
    wrong = subprocess.run([*cmd[:2], "gpt5"], cwd=repo, env=run_env(), capture_output=True, text=True, timeout=300)
    assert wrong.returncode == 2 and "NAME one of generate.baselines ['gpt4', 'llama']" in wrong.stderr
