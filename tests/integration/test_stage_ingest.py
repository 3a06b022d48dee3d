"""`python stages/ingest.py` in a temp dir with its own params.yaml and small sources: the four outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lessismore.config import read_yaml
from lessismore.records import Example, Prompt, read_parquet
from tests.conftest import REPO, run_env

pytestmark = pytest.mark.slow

POSTS = """<?xml version="1.0" encoding="utf-8"?>
<posts>
  <row Id="1" PostTypeId="1" AcceptedAnswerId="2" Score="15" Title="Why is ice slippery?" Tags="|physics|" \
Body="&lt;p&gt;Why?&lt;/p&gt;" />
  <row Id="2" PostTypeId="2" ParentId="1" Score="30" Body="&lt;p&gt;A thin liquid-like layer.&lt;/p&gt;" />
  <row Id="3" PostTypeId="1" Score="2" Title="Unanswered" Tags="|physics|" Body="&lt;p&gt;?&lt;/p&gt;" />
</posts>
"""
WIKIHOW = 'title,result\nBrew Tea,"1. Boil water.\n2. Steep for three minutes."\n'


def _sources(root: Path) -> list[dict[str, str]]:
    (root / "se" / "stem").mkdir(parents=True)
    (root / "se" / "stem" / "Posts.xml").write_text(POSTS, encoding="utf-8")
    (root / "wikihow.csv").write_text(WIKIHOW, encoding="utf-8")
    conversations = [{"conversations": ["Say hi.", "Hi!"], "source": "authors"}, {"conversations": ["odd"]}]
    lines = [json.dumps(c) for c in conversations] + ['{"conversations": ["broken']
    (root / "train.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "test.jsonl").write_text('{"prompt": "Why?", "category": "explanation"}\n{"text": "How?"}\n')
    (root / "dev.jsonl").write_text('{"conversations": ["What?"]}\n')
    spec = [
        ("se_stem", "stackexchange_xml", "se/stem/Posts.xml", "train"),
        ("wikihow", "wikihow_csv", "wikihow.csv", "train"),
        ("handwritten", "lima_jsonl", "train.jsonl", "train"),
        ("test_prompts", "prompts_jsonl", "test.jsonl", "test"),
        ("dev_prompts", "prompts_jsonl", "dev.jsonl", "dev"),
    ]
    return [{"name": n, "format": f, "path": p, "split": s, "license": "test"} | _quota(s) for n, f, p, s in spec]


def _quota(split: str) -> dict[str, int]:
    return {"quota": 0, "curated": False} if split == "train" else {}  # train sources say their cap and kind


def _run_stage(root: Path, sources: list[dict[str, str]], shard_rows: int = 5000) -> subprocess.CompletedProcess:
    """The repo's params.yaml with these sources, written to `root`; then the stage script, run from `root`."""
    params = read_yaml(REPO / "params.yaml")
    params["ingest"] = {"sources": sources}
    params["data"]["shard_rows"] = shard_rows
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    cmd = [sys.executable, str(REPO / "stages" / "ingest.py")]
    return subprocess.run(cmd, cwd=root, env=run_env(), capture_output=True, text=True, timeout=300)


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_ingest_stage_writes_tables_quarantine_and_metrics(tmp_path):
    proc = _run_stage(tmp_path, _sources(tmp_path))
    assert proc.returncode == 0, proc.stderr

    assert [p.name for p in (tmp_path / "data/ingested/examples").iterdir()] == ["part-00000.parquet"]
    examples = read_parquet(tmp_path / "data/ingested/examples", Example)
    assert [(e.origin.source, e.prompt, e.response) for e in examples] == [
        ("se_stem", "Why is ice slippery?\n\nWhy?", "A thin liquid-like layer."),
        ("wikihow", "How to Brew Tea?", "1. Boil water.\n2. Steep for three minutes."),
        ("handwritten", "Say hi.", "Hi!"),
    ]
    assert examples[0].meta["site"] == "stem" and examples[0].meta["tags"] == ["physics"]
    prompts = read_parquet(tmp_path / "data/ingested/prompts.parquet", Prompt)
    assert [(p.text, p.split, p.meta.get("category")) for p in prompts] == [
        ("Why?", "test", "explanation"),
        ("How?", "test", None),
        ("What?", "dev", None),
    ]

    quarantine = [(d["reason"], d["origin"]["source"]) for d in _jsonl(tmp_path / "data/quarantine/ingest.jsonl")]
    assert quarantine == [("no_answer", "se_stem"), ("odd_turns", "handwritten"), ("malformed_json", "handwritten")]

    metrics = json.loads((tmp_path / "metrics/ingest.json").read_text())
    assert metrics["counts"] == {"examples": 3, "prompts": 3, "dropped": 3}
    assert metrics["dropped_by_reason"] == {"malformed_json": 1, "no_answer": 1, "odd_turns": 1}
    assert {k: (v["examples"], v["prompts"], v["dropped"]) for k, v in metrics["per_source"].items()} == {
        "se_stem": (1, 0, 1),
        "wikihow": (1, 0, 0),
        "handwritten": (1, 0, 2),
        "test_prompts": (0, 2, 0),
        "dev_prompts": (0, 1, 0),
    }


def test_ingest_stage_missing_source_fails_naming_the_key(tmp_path):
    """Every broken source at once, before anything is read: exit 2, one message a problem, no traceback."""
    sources = _sources(tmp_path)
    sources[3]["path"] = "nowhere/test.jsonl"
    sources[0]["path"] = "se/*/Comments.xml"
    sources[1]["quota"] = -1
    proc = _run_stage(tmp_path, sources)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith("ingest: params.yaml: 3 problem(s)")
    assert "ingest.sources[3].path: nowhere/test.jsonl does not exist" in proc.stderr
    assert "ingest.sources[0].path: the glob se/*/Comments.xml matches no file" in proc.stderr
    assert "ingest.sources[1].quota: must be >= 0" in proc.stderr
    assert not (tmp_path / "metrics/ingest.json").exists() and not (tmp_path / "data").exists()


def test_quarantine_is_written_even_when_empty(tmp_path):
    (tmp_path / "t.jsonl").write_text('{"conversations": ["a", "b"]}\n')
    (tmp_path / "p.jsonl").write_text('{"prompt": "c"}\n')
    sources = [
        {
            "name": "t",
            "format": "lima_jsonl",
            "path": "t.jsonl",
            "split": "train",
            "license": "x",
            "quota": 0,
            "curated": False,
        },
        {"name": "p", "format": "prompts_jsonl", "path": "p.jsonl", "split": "test", "license": "x"},
    ]
    proc = _run_stage(tmp_path, sources)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "data/quarantine/ingest.jsonl").read_text() == ""
    assert json.loads((tmp_path / "metrics/ingest.json").read_text())["counts"] == {
        "examples": 1,
        "prompts": 1,
        "dropped": 0,
    }


def test_ingest_writes_shards_of_data_shard_rows_the_same_bytes_on_every_run(tmp_path):
    sources = _sources(tmp_path)
    shards = tmp_path / "data/ingested/examples"
    (shards / "part-00007.parquet").parent.mkdir(parents=True)
    (shards / "part-00007.parquet").write_text("left by an earlier run")  # a stale shard must not survive
    runs = []
    for _ in range(2):
        proc = _run_stage(tmp_path, sources, shard_rows=2)
        assert proc.returncode == 0, proc.stderr
        runs.append({p.name: p.read_bytes() for p in sorted(shards.iterdir())})
    assert list(runs[0]) == ["part-00000.parquet", "part-00001.parquet"]  # 3 examples, 2 a shard
    assert runs[0] == runs[1]  # no timestamp or host in the files
    assert [len(read_parquet(shards / name, Example)) for name in runs[0]] == [2, 1]
    assert [e.origin.source for e in read_parquet(shards, Example)] == ["se_stem", "wikihow", "handwritten"]

    proc = _run_stage(tmp_path, sources, shard_rows=0)
    assert proc.returncode == 2 and "data.shard_rows: rows per Parquet shard, >= 1" in proc.stderr
