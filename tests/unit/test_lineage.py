"""Lineage: dvc.lock parsing, the report's lineage table, the git commit (inside and outside a repository), and
`lessismore lineage`'s pure parts: targets, the chain of stages back to the sources, metric keys."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from lessismore.lineage import git_commit, lineage_table, read_lock, stage_lineage
from lessismore.trace import lineage_of, lookup, resolve_target, sources, trace

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
    - path: models/finetuned
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
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
        "GIT_CONFIG_GLOBAL": os.devnull,
    }

    def git(*args):
        return subprocess.run(["git", *args], cwd=tmp_path, env=env, check=True, capture_output=True, text=True)

    git("init", "-q")
    assert git_commit(tmp_path)["commit"] is None  # a repository without commits
    (tmp_path / "a.txt").write_text("1")
    git("add", "a.txt")
    git("commit", "-q", "-m", "one")
    sha = git("rev-parse", "HEAD").stdout.strip()
    assert git_commit(tmp_path) == {"commit": sha, "dirty": False}
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\n")  # what every `dvc repro` rewrites: not a code change
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "judge.json").write_text("{}")
    git("add", "dvc.lock", "metrics")
    git("commit", "-q", "-m", "two")
    sha = git("rev-parse", "HEAD").stdout.strip()
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")
    (tmp_path / "metrics" / "judge.json").write_text('{"win": 1}')
    assert git_commit(tmp_path) == {"commit": sha, "dirty": False}
    (tmp_path / "a.txt").write_text("2")
    assert git_commit(tmp_path) == {"commit": sha, "dirty": True}


# ---------------------------------------------------------------------------------------------------------------
# `lessismore lineage`: targets, the chain through dvc.lock, the sources

CHAIN = {  # ingest <- data/sources; curate <- ingest's out; train <- curate's out, but ran on an older one (stale)
    "ingest": {
        "cmd": "python stages/ingest.py",
        "params": {"ingest.sources": [{"name": "a"}]},
        "deps": {"data/sources": {"md5": "5a.dir", "size": 9, "nfiles": 3}, "stages/ingest.py": {"md5": "1"}},
        "outs": {"data/ingested": {"md5": "1e.dir"}, "metrics/ingest.json": {"md5": "m1"}},
    },
    "curate": {
        "cmd": "python stages/curate.py",
        "params": {"curate.budget": 96},
        "deps": {"data/ingested": {"md5": "1e.dir"}, "src/lessismore/curate": {"md5": "c.dir"}},
        "outs": {"data/curated": {"md5": "cc.dir"}, "metrics/curate.json": {"md5": "m2"}},
    },
    "train": {
        "cmd": "python stages/train.py",
        "params": {},
        "deps": {"data/curated": {"md5": "OLD.dir"}, "data/ingested": {"md5": "1e.dir"}},
        "outs": {"models/finetuned": {"md5": "f.dir"}},
    },
}


def test_resolve_target_knows_outputs_metric_keys_files_inside_outputs_sources_and_stages():
    assert resolve_target(CHAIN, "models/finetuned") == {"path": "models/finetuned", "key": None, "stage": "train"}
    assert resolve_target(CHAIN, "metrics/curate.json:counts.selected")["key"] == "counts.selected"
    assert resolve_target(CHAIN, "models/finetuned/adapter_model.safetensors")["stage"] == "train"
    assert resolve_target(CHAIN, "data/sources") == {"path": "data/sources", "key": None, "stage": None}
    assert resolve_target(CHAIN, "curate") == {"path": None, "key": None, "stage": "curate"}
    with pytest.raises(LookupError) as err:
        resolve_target(CHAIN, "metrics/curate.jsn")
    message = str(err.value)
    assert (
        "did you mean metrics/curate.json" in message and "models/finetuned" in message and "stages: ingest" in message
    )


def test_trace_walks_up_to_the_sources_once_per_stage_and_flags_stale_inputs():
    chain = trace(CHAIN, "train", ["models/finetuned"])
    assert [n["stage"] for n in chain] == ["train", "curate", "ingest"]  # ingest is reached twice, listed once
    deps = {d["path"]: d for d in chain[0]["deps"]}
    assert deps["data/curated"]["from"] == "curate" and deps["data/curated"]["stale"]  # OLD.dir != cc.dir
    assert deps["data/ingested"]["from"] == "ingest" and not deps["data/ingested"]["stale"]
    assert chain[2]["outs"] == {"data/ingested": {"md5": "1e.dir"}}  # only the outs on the chain
    leaves = sources(chain)
    assert [(s["path"], s["kind"], s["used_by"]) for s in leaves] == [
        ("data/sources", "data", ["ingest"]),
        ("src/lessismore/curate", "code", ["curate"]),
        ("stages/ingest.py", "code", ["ingest"]),
    ]
    assert leaves[0]["md5"] == "5a.dir" and leaves[0]["nfiles"] == 3


def test_lookup_follows_dotted_keys_and_says_what_is_there():
    metrics = {"baselines": {"base": {"win": 0.3, "ci": {"win": [0.1, 0.5]}}}}
    assert lookup(metrics, "baselines.base.ci.win.1") == 0.5
    with pytest.raises(LookupError, match=r"no key 'wins' under baselines\.base; there: \['ci', 'win'\]"):
        lookup(metrics, "baselines.base.wins")


def test_lineage_of_reads_the_metric_and_checks_the_file_against_the_lock(tmp_path):
    import hashlib
    import json

    import yaml

    (tmp_path / "metrics").mkdir()
    body = json.dumps({"counts": {"selected": 96}})
    (tmp_path / "metrics/curate.json").write_text(body)
    md5 = hashlib.md5(body.encode()).hexdigest()
    out = {"path": "metrics/curate.json", "md5": md5, "size": len(body)}
    lock = {"stages": {"curate": {"cmd": "c", "deps": [{"path": "data/validated", "md5": "v.dir"}], "outs": [out]}}}
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(lock))
    result = lineage_of(tmp_path, "metrics/curate.json:counts.selected")
    assert (result["value"], result["on_disk"], result["git"]["commit"]) == (96, "as in dvc.lock", None)
    assert result["sources"][0]["path"] == "data/validated"
    (tmp_path / "metrics/curate.json").write_text(json.dumps({"counts": {"selected": 95}}))
    assert lineage_of(tmp_path, "metrics/curate.json:counts.selected")["on_disk"] == "changed"
    with pytest.raises(LookupError, match="no dvc.lock"):
        lineage_of(tmp_path / "elsewhere", "metrics/curate.json")


def test_a_folder_that_several_stages_write_into_traces_to_each_of_them():
    """The judge reads outputs/responses, which generate@<model> and import@<name> each write one file of."""
    stages = {
        "generate@base": {
            "cmd": "python stages/generate.py base",
            "deps": {"models/base": {"md5": "b.dir"}},
            "outs": {"outputs/responses/base.jsonl": {"md5": "1"}},
            "params": {},
        },
        "import@gpt4": {
            "cmd": "python stages/import.py gpt4",
            "deps": {"data/baselines/gpt4.json": {"md5": "g"}},
            "outs": {"outputs/responses/gpt4.jsonl": {"md5": "2"}},
            "params": {"generate.baselines.gpt4.format": "just_eval"},
        },
        "judge": {
            "cmd": "python stages/judge.py",
            "deps": {"outputs/responses": {"md5": "r.dir"}},
            "outs": {"outputs/judgments.jsonl": {"md5": "3"}},
            "params": {},
        },
    }
    chain = trace(stages, "judge", ["outputs/judgments.jsonl"])
    assert [n["stage"] for n in chain] == ["judge", "generate@base", "import@gpt4"]
    assert chain[0]["deps"][0]["from"] == "generate@base, import@gpt4" and not chain[0]["deps"][0]["stale"]
    assert [s["path"] for s in sources(chain)] == ["data/baselines/gpt4.json", "models/base"]
