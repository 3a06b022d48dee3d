"""Kill -9 mid-run, re-run, and get the same run: the train stage resumes exactly from its last checkpoint.

stages/train.py runs as DVC runs it, in a temp dir on the tiny random model, with a checkpoint every step. One
run is killed (SIGKILL, no cleanup) once a checkpoint past the first has been written; the re-run must resume
from a checkpoint, and its per-step losses (the CSV) and final weights must equal those of an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from lessismore import records
from lessismore.config import merge, read_yaml
from tests.conftest import toy_examples

REPO = Path(__file__).resolve().parents[2]
STEPS = 8


def make_train_dir(root: Path, base_dir: Path, **train: object) -> Path:
    """A working dir for stages/train.py: params (tiny profile + `train` overrides), 12 examples, the tiny base."""
    import shutil

    params = merge(read_yaml(REPO / "params.yaml"), read_yaml(REPO / "profiles" / "tiny.yaml"))
    params = merge(params, {"train": train})
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    records.write_jsonl(root / "data" / "curated" / "train.jsonl", toy_examples(12))
    shutil.copytree(base_dir, root / "models" / "base")
    return root


def _cmd() -> list[str]:
    return [sys.executable, str(REPO / "stages" / "train.py")]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}  # same kernels in every run: bitwise-comparable losses


def _run(cwd: Path) -> str:
    done = subprocess.run(_cmd(), cwd=cwd, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"stages/train.py failed:\n{done.stdout}\n{done.stderr[-4000:]}"
    return done.stdout


def _losses(cwd: Path) -> list[tuple[int, float]]:
    from lessismore.train.steplog import read_steps

    rows, problems = read_steps(cwd / "logs" / "train")
    assert problems == []
    return [(int(r["step"]), r["loss"]) for r in rows]


def _weights(cwd: Path, name: str = "adapter_model.safetensors"):
    from safetensors.torch import load_file

    return load_file(cwd / "models" / "finetuned" / name)


def _kill_after_checkpoint(cwd: Path, step: int) -> None:
    proc = subprocess.Popen(_cmd(), cwd=cwd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker = cwd / "models" / "checkpoints" / f"step-{step:06d}" / "state.json"
    deadline = time.monotonic() + 240
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed; raise STEPS"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.slow
def test_kill_and_rerun_resumes_to_the_same_losses_and_weights(tiny_model_dir, tmp_path):
    # LoRA dropout on, so the restored RNG state matters; several epochs, so epoch-end checkpoints exist too;
    # packed rows (the in-process resume of test_train_checkpoints runs unpacked)
    train = dict(max_steps=0, epochs=2, batch_size=2, grad_accum=2, checkpoint_every=1, lora_dropout=0.1, lr=1e-2)
    train["packing"] = True
    whole = make_train_dir(tmp_path / "whole", tiny_model_dir, **train)
    _run(whole)
    reference = _losses(whole)
    assert [s for s, _ in reference] == list(range(1, 7))  # 12 examples / 4 a step, 2 epochs

    killed = make_train_dir(tmp_path / "killed", tiny_model_dir, **train)
    _kill_after_checkpoint(killed, step=2)
    left = sorted(p.name for p in (killed / "models" / "checkpoints").iterdir())
    assert not (killed / "models" / "finetuned").exists() and "step-000002" in left
    out = _run(killed)
    assert "resuming run" in out, out

    metrics = json.loads((killed / "metrics" / "train.json").read_text())
    assert metrics["resumed_from_step"] >= 2
    resumed = _losses(killed)
    assert [s for s, _ in resumed] == [s for s, _ in reference]  # no duplicate, no missing row
    assert [loss for _, loss in resumed] == pytest.approx([loss for _, loss in reference], abs=1e-6)
    a, b = _weights(whole), _weights(killed)
    assert a.keys() == b.keys() and all(float((a[k] - b[k]).abs().max()) < 1e-6 for k in a)

    # kept: every epoch end (steps 3 and 6) and the last two other step checkpoints (4, 5); no temp dir left behind
    kept = sorted(p.name for p in (killed / "models" / "checkpoints").iterdir())
    assert kept == ["step-000003", "step-000004", "step-000005", "step-000006"]
    assert [c["step"] for c in metrics["checkpoints"] if c["epoch_end"]] == [3, 6]
