"""The train stage's core: a plain PyTorch loop, LoRA (peft) or full fine-tune, on whatever device the model is on.

LIMA's recipe (section 3): loss on the responses only (collate.py), AdamW with beta1 0.9 / beta2 0.95 and weight
decay 0.1, a learning rate decaying linearly from `lr` to `lr_end` over all optimizer steps with NO warmup, and
gradient accumulation up to the effective batch. The loss is the token-weighted mean over every response token of
an optimizer step, so accumulation gives exactly the gradient of the big batch.
Every optimizer step is appended to a CSV (step, epoch, loss, lr, tokens, tokens_per_s, seconds) that
`dvc plots` draws. Kept small on purpose: DDP, resume and between-epoch checkpoints hook in around `train()`.
"""

from __future__ import annotations

import csv
import json
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lessismore.train.collate import IGNORE_INDEX, collate, encode_example

LOG_COLUMNS = ("step", "epoch", "loss", "lr", "tokens", "tokens_per_s", "seconds")


def linear_lr(step: int, total: int, lr: float, lr_end: float) -> float:
    """Learning rate of optimizer step `step` (0-based) of `total`: `lr` at the first, `lr_end` at the last.

    >>> [round(linear_lr(s, 3, 1.0, 0.0), 2) for s in range(3)]
    [1.0, 0.5, 0.0]
    """
    return lr if total <= 1 else lr + (lr_end - lr) * step / (total - 1)


def plan_steps(
    lengths: Sequence[int], batch_size: int, grad_accum: int, epochs: int, max_steps: int, seed: int
) -> list[tuple[float, list[list[int]]]]:
    """Every optimizer step up front: (epoch reached after it, its micro-batches of example indices).

    Each epoch is a fresh seeded shuffle. Within one optimizer step the examples are sorted by length before
    being cut into micro-batches: the step's gradient is the same, but right-padding (wasted compute) shrinks.
    `max_steps` > 0 caps the run (smoke tests); the LR schedule then decays over the capped run.
    """
    if batch_size <= 0 or grad_accum <= 0 or epochs <= 0:
        raise ValueError("train.batch_size, train.grad_accum and train.epochs must all be > 0")
    steps = []
    per_step = batch_size * grad_accum
    for epoch in range(epochs):
        order = list(range(len(lengths)))
        random.Random(f"{seed}:{epoch}").shuffle(order)
        for start in range(0, len(order), per_step):
            chunk = sorted(order[start : start + per_step], key=lambda i: lengths[i])
            micro = [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
            steps.append((round(epoch + min(start + per_step, len(order)) / len(order), 4), micro))
    return steps[:max_steps] if max_steps > 0 else steps


def apply_lora(model: Any, *, r: int, alpha: int, dropout: float, targets: Sequence[str]) -> Any:
    """Wrap `model` in a peft LoRA adapter on the `targets` linear layers; only the adapter trains."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(targets), task_type="CAUSAL_LM"
    )
    return get_peft_model(model, config)


def use_bf16(precision: str, device_type: str) -> bool:
    """Whether to autocast to bfloat16: "fp32" never, "bf16" always, "auto" where the hardware does it natively.

    On a CPU with AVX512-BF16/AMX, bf16 autocast about doubles LoRA training speed (measured: 420 vs 220 tok/s on
    SmolLM2-135M, 2 cores); without it, emulated bf16 is slower than fp32, hence "auto" checks.
    """
    if precision not in ("fp32", "bf16", "auto"):
        raise ValueError(f"precision {precision!r}: use 'fp32', 'bf16' or 'auto'")
    if precision != "auto":
        return precision == "bf16"
    import torch

    if device_type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a private probe: treat its absence as "no"
        return False


def _optimizer_step(model: Any, optimizer: Any, batches: list[dict[str, Any]], bf16: bool) -> tuple[float, int, int]:
    """Forward/backward every micro-batch, then one update. Returns (mean loss, input tokens, response tokens)."""
    import torch
    import torch.nn.functional as F

    device = next(model.parameters()).device
    n_labels = sum(int((b["labels"][:, 1:] != IGNORE_INDEX).sum()) for b in batches)
    loss_sum, n_tokens = 0.0, 0
    for batch in batches:
        batch = {k: v.to(device) for k, v in batch.items()}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False)
        loss = F.cross_entropy(  # token t predicts token t+1; summed, then divided by the whole step's count
            out.logits[:, :-1].flatten(0, 1).float(), batch["labels"][:, 1:].flatten(), ignore_index=IGNORE_INDEX,
            reduction="sum",
        )  # fmt: skip
        (loss / n_labels).backward()
        loss_sum += loss.item()
        n_tokens += int(batch["attention_mask"].sum())
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss_sum / n_labels, n_tokens, n_labels


def train(
    model: Any,
    tokenizer: Any,
    examples: Sequence[Any],
    *,
    max_tokens: int,
    method: str = "lora",
    epochs: int = 1,
    max_steps: int = 0,
    lr: float = 2e-4,
    lr_end: float = 2e-5,
    batch_size: int = 4,
    grad_accum: int = 1,
    weight_decay: float = 0.1,
    betas: tuple[float, float] = (0.9, 0.95),
    lora_r: int = 16,
    lora_alpha: int = 32,
    lora_dropout: float = 0.05,
    lora_targets: Sequence[str] = ("q_proj", "k_proj", "v_proj", "o_proj"),
    seed: int = 0,
    precision: str = "fp32",
    log_path: str | Path | None = None,
    progress: bool = True,
) -> tuple[Any, dict[str, Any]]:
    """Fine-tune on `examples` (records.Example, or anything with `.messages`). Returns (trained model, summary).

    For method "lora" the returned model is the peft wrapper: its save_pretrained writes only the adapter.
    Examples left with no response token after trimming are skipped and counted (summary
    "skipped_no_response_tokens"); `precision` is "fp32" (default, reproducible anywhere), "bf16" or "auto".
    """
    import torch

    torch.manual_seed(seed)  # LoRA init and dropout
    encoded = [encode_example(ex.messages, tokenizer, max_tokens) for ex in examples]
    usable = [e for e in encoded if any(label != IGNORE_INDEX for label in e["labels"])]
    if not usable:
        raise ValueError(f"no example keeps a response token after trimming to {max_tokens} tokens; raise max_tokens")
    if method == "lora":
        model = apply_lora(model, r=lora_r, alpha=lora_alpha, dropout=lora_dropout, targets=lora_targets)
    elif method != "full":
        raise ValueError(f"train.method {method!r}: use 'lora' or 'full'")
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=weight_decay)
    plan = plan_steps([len(e["input_ids"]) for e in usable], batch_size, grad_accum, epochs, max_steps, seed)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    bf16 = use_bf16(precision, next(model.parameters()).device.type)
    summary = _run(model, optimizer, usable, plan, pad_id, (lr, lr_end), bf16, log_path, progress, method)
    summary.update(
        method=method, precision="bf16" if bf16 else "fp32", examples=len(examples),
        skipped_no_response_tokens=len(examples) - len(usable), trainable_params=sum(p.numel() for p in params),
        total_params=sum(p.numel() for p in model.parameters()),
    )  # fmt: skip
    return model, summary


def _run(model, optimizer, usable, plan, pad_id, lrs, bf16, log_path, progress, method) -> dict[str, Any]:
    """The loop proper: set the step's LR, take the step, log it. Returns the run's totals."""
    from tqdm.auto import tqdm

    log = _StepLog(log_path)
    losses, tokens, labels, start = [], 0, 0, time.perf_counter()
    model.train()
    bar = tqdm(plan, desc=f"train ({method})", unit="step", disable=not progress)
    for step, (epoch, micro) in enumerate(bar, 1):
        lr_now = linear_lr(step - 1, len(plan), *lrs)
        for group in optimizer.param_groups:
            group["lr"] = lr_now
        t0 = time.perf_counter()
        batches = [collate([usable[i] for i in mb], pad_id) for mb in micro]
        loss, n_tokens, n_labels = _optimizer_step(model, optimizer, batches, bf16)
        tok_s = n_tokens / (time.perf_counter() - t0)
        losses.append(loss)
        tokens, labels = tokens + n_tokens, labels + n_labels
        log.write(step, epoch, loss, lr_now, n_tokens, tok_s, time.perf_counter() - start)
        bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{tok_s:.0f}")
    log.close()
    model.eval()
    seconds = time.perf_counter() - start
    return {
        "steps": len(plan), "epochs": plan[-1][0], "tokens": tokens, "response_tokens": labels,
        "final_loss": losses[-1], "mean_loss_last_10": sum(losses[-10:]) / len(losses[-10:]),
        "tokens_per_s": tokens / seconds, "seconds": seconds,
    }  # fmt: skip


class _StepLog:
    """The per-step CSV, flushed every line so a crash keeps the curve so far. No path: no log."""

    def __init__(self, path: str | Path | None):
        self._fh = None
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._fh = Path(path).open("w", newline="", encoding="utf-8")
            self._csv = csv.writer(self._fh)
            self._csv.writerow(LOG_COLUMNS)

    def write(
        self, step: int, epoch: float, loss: float, lr: float, tokens: int, tok_s: float, seconds: float
    ) -> None:
        if self._fh is not None:
            self._csv.writerow([step, epoch, f"{loss:.6f}", f"{lr:.6g}", tokens, f"{tok_s:.1f}", f"{seconds:.2f}"])
            self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()


def save_model(model: Any, tokenizer: Any, out_dir: str | Path, info: dict[str, Any]) -> dict[str, Any]:
    """Save weights (an adapter only, for LoRA) + tokenizer + lessismore.json; returns the json with its checkpoint.

    `info` should carry method, base and base_checkpoint; the checkpoint hash covers the base's for adapters.
    """
    from lessismore.generate.loading import META_FILE, checkpoint_hash

    out = Path(out_dir)
    model.save_pretrained(out)  # safetensors; peft writes adapter_config.json + adapter_model.safetensors
    tokenizer.save_pretrained(out)
    (out / META_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    meta = {**info, "checkpoint": checkpoint_hash(out)}  # reads base_checkpoint from the file just written
    (out / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return meta
