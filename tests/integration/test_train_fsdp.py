"""The FSDP2 and DDP paths of stages/train.py on 2 CPU processes: same losses, sharded optimizer state, exact resumes.

accelerate only shards on accelerators, so `fsdp_on_cpu.py` makes it take its FSDP2 path on CPU processes (gloo);
the launch config is infra/accelerate/fsdp.yaml with 2 processes. A full fine-tune (what FSDP is for) must:
- give the same per-step losses as the same run under DDP (same examples per rank, same gradient scaling), the
  DDP run itself killed at step 3 and resumed;
- save each rank's own shard of the AdamW state (two chunks of one tensor, at different offsets);
- after `kill -9` of the whole process tree at step 2, resume to the uninterrupted run's losses and weights.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.integration.test_train_resume import _losses, _weights, make_train_dir

REPO = Path(__file__).resolve().parents[2]
CPU_DDP = REPO / "infra" / "accelerate" / "cpu_ddp.yaml"
TRAIN = dict(method="full", max_steps=0, epochs=2, batch_size=2, grad_accum=1, lr=1e-2, checkpoint_every=1)


def _fsdp_config(tmp: Path) -> Path:
    config = yaml.safe_load((REPO / "infra" / "accelerate" / "fsdp.yaml").read_text())
    config["num_processes"] = 2
    path = tmp / "fsdp_2cpu.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _cmd(config: Path, fsdp: bool) -> list[str]:
    shim = [str(Path(__file__).with_name("fsdp_on_cpu.py"))] if fsdp else []
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(config),
        "--main_process_port",
        "0",
        *shim,
        str(REPO / "stages" / "train.py"),
    ]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def _run(cwd: Path, cmd: list[str]) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"accelerate launch failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    return done.stdout


def _kill_tree_after_checkpoint(cwd: Path, cmd: list[str], step: int) -> None:
    """SIGKILL the launcher and every worker (torchrun starts them in their own session: killpg would miss them)."""
    import psutil

    proc = subprocess.Popen(cmd, cwd=cwd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker = cwd / "models" / "checkpoints" / f"step-{step:06d}" / "state.json"
    deadline = time.monotonic() + 240
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    for p in tree:
        p.kill()
    psutil.wait_procs(tree, timeout=30)


@pytest.mark.slow
def test_fsdp_matches_a_resumed_ddp_run_shards_the_optimizer_and_resumes_exactly(tiny_model_dir, tmp_path):
    from torch.distributed.checkpoint import FileSystemReader

    fsdp = _cmd(_fsdp_config(tmp_path), fsdp=True)
    whole = make_train_dir(tmp_path / "whole", tiny_model_dir, **TRAIN)
    _run(whole, fsdp)
    reference = _losses(whole)
    assert [s for s, _ in reference] == list(range(1, 7))  # 12 examples / (2 a rank x 2 ranks), 2 epochs

    # DDP, killed at step 3 and resumed (its optimizer state is replicated: one copy saved), ends where FSDP does
    ddp, ddp_cmd = make_train_dir(tmp_path / "ddp", tiny_model_dir, **TRAIN), _cmd(CPU_DDP, fsdp=False)
    _kill_tree_after_checkpoint(ddp, ddp_cmd, step=3)
    assert "resuming run" in _run(ddp, ddp_cmd)
    assert [x for _, x in _losses(ddp)] == pytest.approx([x for _, x in reference], abs=1e-5)

    # sharded: each rank wrote its slice of the moments, e.g. the two halves of q_proj's exp_avg
    optimizer = whole / "models" / "checkpoints" / "step-000006" / "optimizer"
    assert sorted(p.name for p in optimizer.glob("*.distcp")) == ["__0_0.distcp", "__1_0.distcp"]
    meta = FileSystemReader(str(optimizer)).read_metadata().state_dict_metadata
    key = next(k for k in meta if k.endswith("layers.0.self_attn.q_proj.weight.exp_avg"))
    offsets = sorted(tuple(chunk.offsets) for chunk in meta[key].chunks)
    assert len(offsets) == 2 and offsets[0] != offsets[1], offsets
    assert not (whole / "models" / "finetuned" / "optimizer").exists()  # the model dir carries no resume state

    killed = make_train_dir(tmp_path / "killed", tiny_model_dir, **TRAIN)
    _kill_tree_after_checkpoint(killed, fsdp, step=2)
    assert not (killed / "models" / "finetuned").exists()
    out = _run(killed, fsdp)
    assert "resuming run" in out, out
    resumed = _losses(killed)
    assert [s for s, _ in resumed] == [s for s, _ in reference]
    assert [x for _, x in resumed] == pytest.approx([x for _, x in reference], abs=1e-6)
    a, b = _weights(whole, "model.safetensors"), _weights(killed, "model.safetensors")
    assert a.keys() == b.keys() and all(float((a[k] - b[k]).abs().max()) < 1e-6 for k in a)
