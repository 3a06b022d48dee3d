"""The stale-rerun proof, in a real DVC repository: an edit to a module that a stage reaches only transitively marks
the stage changed (`dvc status`), and an edit to a module it never runs does not.

The stage under test carries the code deps of this repository's own dvc.yaml, so what is proven is that dvc.yaml,
not a copy of it, keeps the lineage from going stale.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from tests.conftest import REPO, run_env

pytestmark = pytest.mark.slow


def _run(args: list[str], cwd) -> str:
    done = subprocess.run(args, cwd=cwd, env=run_env(), capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _repo_with_stage(tmp_path, name: str):
    """A git + DVC repo holding this project's code and one stage: `name`'s code deps from dvc.yaml, a trivial cmd."""
    repo = tmp_path / "repo"
    shutil.copytree(
        REPO / "src" / "lessismore", repo / "src" / "lessismore", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copytree(REPO / "stages", repo / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    deps = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"][name]["deps"]
    code = [d for d in deps if isinstance(d, str) and d.startswith(("src/", "stages/"))]
    stage = {"cmd": "python -c \"open('out.txt', 'w').write('made')\"", "deps": code, "outs": ["out.txt"]}
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": {name: stage}}))
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["dvc", "repro", "-q"]):
        _run(cmd, repo)
    assert "up to date" in _run(["dvc", "status"], repo)
    return repo


@pytest.mark.parametrize(
    "edited",
    [
        "src/lessismore/records.py",  # content ids and normalisation: the judge stage reaches it only transitively
        "src/lessismore/judge/parse.py",  # the verdict parser, behind judge/run.py -> protocol.py
        "src/lessismore/models.py",  # the checkpoint loader of a local judge, behind judge/factory.py (lazily)
    ],
)
def test_an_edit_to_a_transitive_module_marks_the_judge_stage_changed(tmp_path, edited):
    repo = _repo_with_stage(tmp_path, "judge")
    with (repo / edited).open("a", encoding="utf-8") as fh:
        fh.write("\n# an edit\n")
    status = _run(["dvc", "status"], repo)
    assert "judge:" in status and f"modified:           {edited}" in status, status


def test_an_edit_to_a_module_the_stage_never_runs_changes_nothing(tmp_path):
    repo = _repo_with_stage(tmp_path, "judge")
    with (repo / "src/lessismore/curate/filters.py").open("a", encoding="utf-8") as fh:
        fh.write("\n# an edit to curation, which the judge stage never imports\n")
    assert "up to date" in _run(["dvc", "status"], repo)
