"""The distributed path: stages/train.py under `accelerate launch` with 2 CPU processes (DDP over gloo).

Same stage, same tiny model; the run must really be 2 processes (the metrics record world_size 2), learn
(finite loss that goes down), write its outputs once (rank 0) and leave a model that loads.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.test_train_resume import make_train_dir

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_two_process_cpu_ddp_trains_and_saves(tiny_model_dir, tmp_path, monkeypatch):
    # packed rows: each rank packs its own share of a step
    train = dict(max_steps=0, epochs=4, batch_size=2, grad_accum=1, lr=1e-2, packing=True)
    cwd = make_train_dir(tmp_path, tiny_model_dir, **train)
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(REPO / "infra" / "accelerate" / "cpu_ddp.yaml"),
        "--main_process_port",
        "0",
        str(REPO / "stages" / "train.py"),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"accelerate launch failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"

    metrics = json.loads((cwd / "metrics" / "train.json").read_text())
    assert metrics["world_size"] == 2
    assert metrics["steps"] == 4 * 3  # 12 examples / (batch 2 x accum 1 x 2 ranks) = 3 steps an epoch
    from lessismore.train.steplog import read_steps

    rows, _ = read_steps(cwd / "logs" / "train", cwd / "logs" / "train_perf")
    assert [int(r["step"]) for r in rows] == list(range(1, 13))  # one writer: no duplicated rows
    losses = [r["loss"] for r in rows]
    assert all(math.isfinite(x) for x in losses) and losses[-1] < losses[0]
    assert all(r["peak_mem_mb"] > 0 for r in rows)

    from lessismore.models import load_causal_lm

    monkeypatch.chdir(cwd)  # the adapter names its base relative to the repo root, as the stage recorded it
    model, tokenizer = load_causal_lm(Path("models/finetuned"))  # the adapter merged into its base
    ids = tokenizer("The quick brown fox", return_tensors="pt")["input_ids"]
    assert math.isfinite(float(model(input_ids=ids).logits.float().abs().max()))
