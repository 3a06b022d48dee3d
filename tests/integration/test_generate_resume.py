"""The generate stage killed mid-run (SIGKILL) and re-run: nothing is generated twice, nothing is missing.

The stage runs as DVC runs it (a subprocess in a temp dir), through a small launcher that wraps the transformers
backend's batch call (the seam): it logs every prompt it generates and, when told, kills its own process with
SIGKILL as the second batch starts, i.e. after the first batch has been appended to the answer file.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lessismore import records
from lessismore.config import merge, read_yaml
from tests.conftest import run_env

REPO = Path(__file__).resolve().parents[2]
LAUNCHER = """
import json, os, runpy, signal, sys
from lessismore.generate import transformers_backend as tb

original, calls = tb.TransformersBackend._generate_batch, []
def logged(self, texts):
    calls.append(len(texts))
    if len(calls) == int(os.environ.get("KILL_AT_BATCH", "0")):
        os.kill(os.getpid(), signal.SIGKILL)
    out = original(self, texts)
    with open(os.environ["GEN_LOG"], "a") as fh:
        fh.writelines(json.dumps(t) + "\\n" for t in texts)
    return out
tb.TransformersBackend._generate_batch = logged
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def _setup(root: Path, model_dir: Path, n_prompts: int) -> list[records.Prompt]:
    params = merge(read_yaml(REPO / "params.yaml"), read_yaml(REPO / "profiles" / "tiny.yaml"))
    params["generate"].update(models=["base"], batch_size=2, max_new_tokens=4, baselines={}, backend="transformers")
    params["judge"].update(candidate="base", baselines=[])  # judge names only systems generate answers for
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    shutil.copytree(model_dir, root / "models" / "base")
    origin = records.Origin(source="test_prompts", file="test.jsonl", row="0")
    prompts = [
        records.Prompt(text=f"Question {i}: " + "why? " * i, split="test", origin=origin) for i in range(n_prompts)
    ]
    records.write_parquet(root / "data" / "validated" / "prompts.parquet", prompts)
    (root / "launch.py").write_text(LAUNCHER, encoding="utf-8")
    return prompts


def _run(root: Path, kill_at: int = 0) -> subprocess.CompletedProcess:
    env = {**run_env(), "GEN_LOG": str(root / "generated.log"), "KILL_AT_BATCH": str(kill_at)}
    cmd = [sys.executable, str(root / "launch.py"), str(REPO / "stages" / "generate.py"), "base"]
    return subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)


def _generated(root: Path) -> list[str]:
    return [json.loads(line) for line in (root / "generated.log").read_text().splitlines()]


@pytest.mark.slow
def test_kill_mid_run_then_rerun_generates_each_prompt_exactly_once(tmp_path, tiny_model_dir):
    prompts = _setup(tmp_path, tiny_model_dir, n_prompts=6)
    out = tmp_path / "outputs" / "responses" / "base.jsonl"

    killed = _run(tmp_path, kill_at=2)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert len(out.read_text().splitlines()) == 2 == len(_generated(tmp_path))  # batch 1 survived the kill

    done = _run(tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    generated = _generated(tmp_path)
    assert len(generated) == len(set(generated)) == len(prompts)  # across both runs: each prompt generated once
    responses = records.read_jsonl(out, records.Response)
    assert [r.prompt_id for r in responses] == [p.id for p in prompts]  # every prompt exactly once, in order
    metrics = json.loads((tmp_path / "metrics" / "timing" / "generate" / "base.json").read_text())  # what it did
    assert metrics["resumed"] == 2 and metrics["generated"] == 4 and metrics["stale"] == 0

    # a new checkpoint must not reuse a single old answer
    weights = tmp_path / "models" / "base" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    again = _run(tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    metrics = json.loads((tmp_path / "metrics" / "timing" / "generate" / "base.json").read_text())
    assert metrics["resumed"] == 0 and metrics["generated"] == 6 and metrics["stale"] == 6
    assert "dropped 6 stale" in again.stdout
    fresh = records.read_jsonl(out, records.Response)
    assert len(fresh) == 6 and {r.checkpoint for r in fresh}.isdisjoint({r.checkpoint for r in responses})
