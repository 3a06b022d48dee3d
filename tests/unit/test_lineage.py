"""Lineage: dvc.lock parsing, the report's lineage table and the git commit (inside and outside a repository)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from lessismore.lineage import git_commit, lineage_table, read_lock, stage_lineage

LOCK = """\
schema: '2.0'
stages:
  curate:
    cmd: python stages/curate.py
    deps:
    - path: data/validated
      hash: md5
      md5: 0a1b.dir
      size: 2048
      nfiles: 2
    params:
      params.yaml:
        base.seed: 1234
        curate:
          budget: 96
          quotas:
            wikihow: 24
    outs:
    - path: data/curated
      hash: md5
      md5: c0ffee.dir
      size: 4096
      nfiles: 1
  train:
    cmd: python stages/train.py
    deps:
    - path: data/curated
      hash: md5
      md5: c0ffee.dir
    outs:
    - path: models/final
      hash: md5
      md5: beef.dir
      size: 999
      nfiles: 4
  judge:
    cmd: python stages/judge.py
    outs:
    - path: outputs/judgments.jsonl
      hash: md5
      md5: 1234abcd
      size: 10
"""


def test_stage_lineage_reads_a_dvc_lock(tmp_path):
    (tmp_path / "dvc.lock").write_text(LOCK)
    stages = stage_lineage(tmp_path / "dvc.lock")
    assert sorted(stages) == ["curate", "judge", "train"]
    curate = stages["curate"]
    assert curate["deps"]["data/validated"] == {"md5": "0a1b.dir", "size": 2048, "nfiles": 2}
    assert curate["outs"]["data/curated"]["md5"] == "c0ffee.dir"
    assert curate["params"] == {"base.seed": 1234, "curate.budget": 96, "curate.quotas.wikihow": 24}
    assert stages["train"]["params"] == {} and stages["judge"]["cmd"] == "python stages/judge.py"


def test_lineage_table_picks_the_key_artifacts(tmp_path):
    (tmp_path / "dvc.lock").write_text(LOCK)
    table = lineage_table(stage_lineage(tmp_path / "dvc.lock"), {"commit": "abc", "dirty": False})
    hashes = {a["what"]: a["md5"] for a in table["artifacts"]}
    assert hashes["curated data"] == "c0ffee.dir" and hashes["checkpoint"] == "beef.dir"
    assert hashes["judgments"] == "1234abcd" and hashes["responses"] == ""  # generate has not run: shown empty
    assert table["params"] == {"curate": {"base.seed": 1234, "curate.budget": 96, "curate.quotas.wikihow": 24}}
    assert table["git"] == {"commit": "abc", "dirty": False}


def test_missing_lock_is_empty_and_a_broken_one_says_how_to_fix(tmp_path):
    assert read_lock(tmp_path / "dvc.lock") == {} and stage_lineage(tmp_path / "dvc.lock") == {}
    (tmp_path / "dvc.lock").write_text("- just\n- a list\n")
    with pytest.raises(ValueError, match="dvc repro"):
        read_lock(tmp_path / "dvc.lock")


def test_git_commit_outside_a_repository(tmp_path):
    assert git_commit(tmp_path) == {"commit": None, "dirty": False}


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_commit_and_dirty_flag(tmp_path):
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "GIT_CONFIG_GLOBAL": os.devnull}  # fmt: skip

    def git(*args):
        return subprocess.run(["git", *args], cwd=tmp_path, env=env, check=True, capture_output=True, text=True)

    git("init", "-q")
    assert git_commit(tmp_path)["commit"] is None  # a repository without commits
    (tmp_path / "a.txt").write_text("1")
    git("add", "a.txt")
    git("commit", "-q", "-m", "one")
    sha = git("rev-parse", "HEAD").stdout.strip()
    assert git_commit(tmp_path) == {"commit": sha, "dirty": False}
    (tmp_path / "a.txt").write_text("2")
    assert git_commit(tmp_path) == {"commit": sha, "dirty": True}
