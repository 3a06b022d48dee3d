"""The GPU path of the trainer: bf16 autocast on CUDA, with gradient checkpointing. Skipped cleanly without a GPU.

On a GPU the loop must put the model on it, train in bf16 autocast with fp32 master weights, keep the losses
finite and falling, and log GPU memory (allocated tensors, not the process RSS).
"""

from __future__ import annotations

import math

import pytest

from tests.unit.test_train_loop import EXAMPLES, _load

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


@pytest.mark.parametrize("method", ["lora", "full"])
def test_bf16_training_on_a_gpu(tiny_model_dir, tmp_path, method):
    from tests.specs import run_train

    model, tokenizer = _load(tiny_model_dir)
    log = tmp_path / "train"
    trained, summary = run_train(
        model,
        tokenizer,
        EXAMPLES * 4,
        max_tokens=128,
        method=method,
        epochs=4,
        batch_size=4,
        grad_accum=1,
        lr=3e-3,
        lr_end=3e-4,
        seed=0,
        precision="bf16",
        gradient_checkpointing=True,
        log_dir=log,
        perf_dir=tmp_path / "train_perf",
    )
    assert summary["precision"] == "bf16"
    assert all(p.device.type == "cuda" for p in trained.parameters())
    assert all(p.dtype == torch.float32 for p in trained.parameters() if p.requires_grad)  # fp32 master weights
    from lessismore.train.steplog import read_steps

    rows, _ = read_steps(log, tmp_path / "train_perf")
    losses = [r["loss"] for r in rows]
    assert all(math.isfinite(x) for x in losses) and losses[-1] < losses[0]
    total_mib = torch.cuda.get_device_properties(0).total_memory / 2**20
    assert all(0 < float(r["peak_mem_mb"]) < total_mib for r in rows)  # GPU MiB, not the host's RSS
