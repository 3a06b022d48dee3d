"""stages/validate.py then stages/curate.py as DVC runs them (cwd = a project dir), on parquet written here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lessismore.config import read_yaml
from lessismore.records import (
    Dropped,
    Example,
    Message,
    Origin,
    Prompt,
    ShardWriter,
    iter_jsonl,
    read_jsonl,
    read_parquet,
    write_jsonl,
    write_parquet,
)

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

LONG = "Open the valve slowly, then check the gauge. The pressure should settle within a minute."


def example(source: str, row: int, answer: str = LONG, fmt: str = "lima_jsonl", **meta) -> Example:
    messages = (Message("user", f"Question {row} from {source}?"), Message("assistant", answer))
    meta = {"format": fmt, "split": "train", **meta}
    return Example(messages=messages, origin=Origin(source, f"data/sources/{source}", str(row)), meta=meta)


def project(
    tmp_path: Path,
    drop_source: str = "",
    ingest_drops: tuple[Dropped, ...] = (),
    budget: int = 4,
    shard_rows: int = 10_000,
    copy_of_first: bool = False,
    **curated: bool,
) -> Path:
    """A project as ingest leaves it: params, example shards of `shard_rows`, prompts and the ingest quarantine."""
    params = read_yaml(REPO / "params.yaml")
    params["data"]["shard_rows"] = shard_rows
    params["curate"] |= {"budget": budget, "se_min_score": 10, "diversity": "none"}
    params["curate"]["response_chars"] |= {"stackexchange_xml": [40, 4096], "wikihow_csv": [40, 4096]}
    for source in params["ingest"]["sources"]:
        if source["split"] == "train":
            source["quota"] = 1 if source["name"] == "se_stem" else 0
            source["curated"] = curated.get(source["name"], False)
            if source["name"] == "handwritten" and not source["curated"]:  # lima_jsonl has no window of its own
                source["rules"] = {"min_response_chars": 40}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    se = {"fmt": "stackexchange_xml", "score": 20}
    examples = [
        example("se_stem", 1, **se),
        example("se_stem", 2, **se),
        example("se_stem", 3, "I think the valve is stuck, so open it slowly and wait a minute.", **se),
        example("se_other", 4, **{**se, "score": 2}),
        example("se_other", 5, **se),
        example("wikihow", 6, fmt="wikihow_csv"),
        example("wikihow", 7, "<p>Open the valve.</p> Then wait for the gauge to settle down.", fmt="wikihow_csv"),
        example("handwritten", 8),
        example("handwritten", 9, "Too short."),
    ]
    examples = [e for e in examples if e.origin.source != drop_source]
    if copy_of_first:  # the same content again, in the last shard: a duplicate across shards
        examples.append(
            Example(examples[0].messages, Origin("se_stem", "data/sources/se_stem", "10"), examples[0].meta)
        )
    prompts = [
        Prompt("Write a dev haiku.", "dev", Origin("dev_prompts", "p.jsonl", "1")),
        # LIMA's test prompt lima-16: a question about HTML is not markup left by a scrape
        Prompt(
            "Given a <span> in HTML I want to change its color on mouse over.",
            "test",
            Origin("test_prompts", "t", "1"),
        ),
    ]
    with ShardWriter(tmp_path / "data/ingested/examples", Example, shard_rows) as shards:
        for e in examples:
            shards.write(e)
    write_parquet(tmp_path / "data/ingested/prompts.parquet", prompts)
    write_jsonl(tmp_path / "data/quarantine/ingest.jsonl", ingest_drops)
    return tmp_path


def stage(cwd: Path, name: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "stages" / f"{name}.py")], cwd=cwd, capture_output=True, text=True
    )


def test_validate_then_curate_write_every_output(tmp_path):
    root = project(tmp_path)
    done = stage(root, "validate")
    assert done.returncode == 0, done.stderr
    metrics = json.loads((root / "metrics/validate.json").read_text())
    assert metrics["counts"] == {"examples": 8, "prompts": 2, "quarantined": 1} and metrics["success"] is True
    quarantined = [json.loads(line) for line in (root / "data/quarantine/validate.jsonl").read_text().splitlines()]
    assert [(q["origin"]["row"], q["reason"]) for q in quarantined] == [
        ("7", "expect_column_values_to_not_match_regex_list:prose")
    ]
    assert metrics["read"] == {"examples": 9, "prompts": 2} and metrics["batches"] == {"examples": 1, "prompts": 1}
    assert len(read_parquet(root / "data/validated/examples", Example)) == 8
    assert len(read_parquet(root / "data/validated/prompts.parquet", Prompt)) == 2
    assert metrics["eval"] == {"dev": {"prompts": 1, "dropped": 0}, "test": {"prompts": 1, "dropped": 0}}
    index = (root / "reports/data_docs/index.html").read_text()
    assert "static/offline.js" in index and '<script src="https://' not in index
    assert sorted(p.name for p in root.iterdir()) == ["data", "metrics", "params.yaml", "reports"]  # no GX litter

    done = stage(root, "curate")
    assert done.returncode == 0, done.stderr
    curated = json.loads((root / "metrics/curate.json").read_text())
    assert curated["counts"] == {"candidates": 8, "selected": 4, "dropped": 4}
    assert [s["n"] for s in curated["funnel"]] == [8, 5, 5, 5, 5, 4]
    assert [s["step"] for s in curated["funnel"]][-4:] == ["dedup", "decontam", "near_dup", "selected"]
    assert curated["dropped_by_reason"] == {
        "first_person": 1,
        "low_score": 1,
        "over_quota": 1,
        "response_too_short": 1,
    }
    train = read_jsonl(root / "data/curated/train.jsonl", Example)
    assert len(train) == 4 and all(e.messages[-1].role == "assistant" for e in train)
    assert sum(e.origin.source == "se_stem" for e in train) == 1  # its quota
    assert len(list(iter_jsonl(root / "data/quarantine/curate.jsonl"))) == 4


def test_validate_fails_naming_a_declared_source_that_has_no_rows(tmp_path):
    root = project(tmp_path, drop_source="handwritten")
    done = stage(root, "validate")
    assert done.returncode == 2  # a user error: the data, not the code
    assert "source 'handwritten' (data/sources/handwritten/train.jsonl) has no valid rows" in done.stderr
    assert "remove 'handwritten' from ingest.sources" in done.stderr
    assert "Traceback" not in done.stderr
    assert (root / "metrics/validate.json").exists() and (root / "reports/data_docs/index.html").exists()


def test_a_test_prompt_lost_at_ingest_fails_validate_by_name_unless_allowed(tmp_path):
    lost = Dropped("ingest", "malformed_json", Origin("test_prompts", "data/sources/prompts/test.jsonl", "17"), "bad")
    root = project(tmp_path, ingest_drops=(lost,))
    done = stage(root, "validate")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "1 dev/test prompt(s) were removed" in done.stderr
    assert "test prompt data/sources/prompts/test.jsonl row 17 (ingest: malformed_json)" in done.stderr
    assert "validate.allow_eval_drop: true" in done.stderr
    assert (root / "data/validated/prompts.parquet").exists()  # everything was written before the verdict

    params = yaml.safe_load((root / "params.yaml").read_text())
    params["validate"]["allow_eval_drop"] = True
    (root / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    done = stage(root, "validate")
    assert done.returncode == 0, done.stderr
    assert "WARNING 1 dev/test prompt(s) were removed" in " ".join(done.stderr.split())
    metrics = json.loads((root / "metrics/validate.json").read_text())
    assert metrics["eval"]["test"] == {"prompts": 1, "dropped": 1}


def test_a_curated_source_keeps_its_short_answer_and_an_under_filled_budget_is_said(tmp_path):
    root = project(tmp_path, budget=9, handwritten=True)  # people chose handwritten's rows: no selection rule
    assert stage(root, "validate").returncode == 0
    done = stage(root, "curate")
    assert done.returncode == 0, done.stderr
    train = read_jsonl(root / "data/curated/train.jsonl", Example)
    assert ("handwritten", "9") in {(e.origin.source, e.origin.row) for e in train}  # "Too short." is kept
    curated = json.loads((root / "metrics/curate.json").read_text())
    assert curated["rules"]["handwritten"].startswith("curated: chosen by people")
    assert curated["rules"]["wikihow"].startswith("lima: response 40-4096 chars")
    assert curated["budget_shortfall"]["short_by"] == 9 - len(train) > 0
    assert f"curate: WARNING selected {len(train)} of the budget 9" in " ".join(done.stderr.split())


def test_shards_of_3_rows_give_the_same_outputs_as_one_shard_and_the_counts_add_up(tmp_path):
    """The same 10 examples (the last a copy of the first) as 4 shards of 3 rows and as one: validate finds the same
    rows, the duplicate across shards included, and writes the same quarantine; curate selects the same set."""
    outputs = {}
    for shard_rows in (3, 10_000):
        (tmp_path / str(shard_rows)).mkdir()
        root = project(tmp_path / str(shard_rows), shard_rows=shard_rows, copy_of_first=True)
        assert len(list((root / "data/ingested/examples").iterdir())) == (4 if shard_rows == 3 else 1)
        done = stage(root, "validate")
        assert done.returncode == 0, done.stderr
        metrics = json.loads((root / "metrics/validate.json").read_text())
        assert metrics["batches"] == {"examples": 4 if shard_rows == 3 else 1, "prompts": 1}
        assert metrics["read"] == {"examples": 10, "prompts": 2}
        assert metrics["counts"] == {"examples": 8, "prompts": 2, "quarantined": 2}  # 10 + 2 = 8 + 2 + 2
        assert metrics["dropped_by_reason"] == {
            "duplicate_id": 1,
            "expect_column_values_to_not_match_regex_list:prose": 1,
        }
        per_source = metrics["per_source"]
        assert sum(n["read"] for n in per_source.values()) == 12 and sum(n["valid"] for n in per_source.values()) == 10
        validated = sorted((root / "data/validated/examples").iterdir())
        # validated shard n: the kept rows of ingested shard n (the last held only the copy of the first)
        assert [len(read_parquet(p, Example)) for p in validated] == ([3, 3, 2, 0] if shard_rows == 3 else [8])
        assert stage(root, "curate").returncode == 0
        del metrics["batches"]
        files = ("data/curated/train.jsonl", "data/quarantine/validate.jsonl", "data/quarantine/curate.jsonl")
        outputs[shard_rows] = {f: (root / f).read_bytes() for f in files} | {"validate.json": metrics}
        outputs[shard_rows]["examples"] = read_parquet(root / "data/validated/examples", Example)
    assert outputs[3] == outputs[10_000]
    (dup,) = [
        d for d in read_jsonl(tmp_path / "3/data/quarantine/validate.jsonl", Dropped) if d.reason == "duplicate_id"
    ]
    assert dup.origin.row == "10" and "as data/sources/se_stem row 1, which is kept" in dup.detail
