"""The curate stage selecting by scores (curate.variant quality_only, rated through a real OpenAI-compatible server
of the tests' own), killed with SIGKILL while it rates, then run again: what was rated before the kill is never
asked again, and the result is byte for byte what a run from an empty cache gives."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from lessismore.config import read_yaml
from lessismore.contract import SCORE_CACHE, TRAIN_SET, quarantine
from tests.conftest import REPO, run_env
from tests.servers import fault_servers

pytestmark = pytest.mark.slow
ROWS = 40
KEY_ENV = "LESSISMORE_TEST_RATER_KEY"


def _project(root: Path, url: str) -> Path:
    root.mkdir(parents=True)
    rows = [
        {
            "conversations": [
                f"Question {i}: how should I care for plant number {i}?",
                f"Plant {i} wants " + "water. " * i,
            ]
        }
        for i in range(1, ROWS + 1)
    ]
    (root / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "test.jsonl").write_text('{"prompt": "Why is the sky blue?"}\n')
    (root / "dev.jsonl").write_text('{"prompt": "Name three rivers."}\n')
    params = read_yaml(REPO / "params.yaml")
    params["ingest"] = {
        "sources": [
            {
                "name": "plants",
                "format": "lima_jsonl",
                "path": "train.jsonl",
                "split": "train",
                "license": "test",
                "quota": 0,
                "curated": False,
            },
            {"name": "test", "format": "prompts_jsonl", "path": "test.jsonl", "split": "test", "license": "test"},
            {"name": "dev", "format": "prompts_jsonl", "path": "dev.jsonl", "split": "dev", "license": "test"},
        ]
    }
    c = params["curate"]
    c.update(variant="quality_only", budget=10, diversity="none")
    c["scores"]["per_pick"] = 0  # every candidate is rated
    c["scores"]["rater"] = {
        **c["scores"]["rater"],
        "backend": "openai",
        "model": "rater-under-test",
        "mode": "generate",
        "openai": {"base_url": url, "api_key_env": KEY_ENV, "concurrency": 1, "timeout_s": 10.0, "max_retries": 1},
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for stage in ("ingest", "validate"):
        _stage(root, stage).check_returncode()
    return root


def _stage(root: Path, stage: str, **kw) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(REPO / "stages" / f"{stage}.py")]
    env = {**run_env(), KEY_ENV: "sk-test-rater"}
    return subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=600, **kw)


def _grade(message: str) -> str:
    """A rater's reply that depends only on what it was asked: the plant's number, mod 6, plus 1."""
    number = int(message.split("Question ")[1].split(":")[0])
    return f"Score: {number % 6 + 1}"


def test_a_killed_scoring_run_resumes_without_asking_again(tmp_path):
    with fault_servers() as start:
        server = start(reply=_grade, latency_s=0.15)
        root = _project(tmp_path / "p", server.url)
        asked_before = len(server.bodies)
        with (root / "curate.log").open("w") as log:
            env = {**run_env(), KEY_ENV: "sk-test-rater"}
            proc = subprocess.Popen(
                [sys.executable, str(REPO / "stages" / "curate.py")], cwd=root, env=env, stdout=log, stderr=log
            )
            cache = root / SCORE_CACHE
            while proc.poll() is None and (not cache.exists() or cache.read_text().count("\n") < 5):
                time.sleep(0.01)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        kept = [json.loads(line) for line in cache.read_text().splitlines() if line.endswith("}")]
        assert 5 <= len(kept) < ROWS, "killed while rating"
        asked_first = len(server.bodies) - asked_before

        resumed = _stage(root, "curate")
        assert resumed.returncode == 0, resumed.stderr
        asked_again = len(server.bodies) - asked_before - asked_first
        assert asked_again == ROWS - len(kept)  # only what the cache lacked
        rows = [json.loads(line) for line in cache.read_text().splitlines()]
        assert len({r["key"] for r in rows}) == ROWS == len(rows)
        outputs = [(root / p).read_bytes() for p in (TRAIN_SET, quarantine("curate"))]

        cache.unlink()  # from an empty cache: the same selection, the same reasons, byte for byte
        fresh = _stage(root, "curate")
        assert fresh.returncode == 0, fresh.stderr
        assert [(root / p).read_bytes() for p in (TRAIN_SET, quarantine("curate"))] == outputs

    selected = [json.loads(line) for line in outputs[0].decode().splitlines()]
    assert len(selected) == 10 and all(ex["meta"]["scores"]["quality"] >= 5 for ex in selected)
    assert "sk-test-rater" not in resumed.stderr + fresh.stderr
