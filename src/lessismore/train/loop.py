"""The train stage's core: a plain PyTorch loop, LoRA (peft) or full fine-tune, resumable, under accelerate.

LIMA's recipe (section 3): loss on the responses only (collate.py), AdamW with beta1 0.9 / beta2 0.95 and weight
decay 0.1, a learning rate decaying linearly from `lr` to `lr_end` over all optimizer steps with NO warmup, and
gradient accumulation up to the effective batch. The loss is the token-weighted mean over every response token of
an optimizer step (on every rank together), so accumulation and data parallelism give exactly the big batch's
gradient. Every step is planned up front from the seed (`plan_steps`), which is what makes a resume exact:
checkpoints.py saves weights, the optimizer state (sharded per rank), RNG states and totals; a re-run continues
from the newest one.
distributed.py holds the accelerate side (one process, DDP, FSDP; bf16); steplog.py the per-step CSV.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lessismore.train.checkpoints import (
    latest_matching,
    load_optimizer,
    load_trainer_state,
    load_weights,
    remove,
    run_changes,
    run_identity,
    set_rng_state,
)
from lessismore.train.collate import IGNORE_INDEX, encode_example
from lessismore.train.distributed import make_accelerator, use_bf16
from lessismore.train.runner import Runner
from lessismore.train.steplog import LOG_COLUMNS

__all__ = ["LOG_COLUMNS", "apply_lora", "linear_lr", "plan_steps", "save_model", "train", "use_bf16"]


def linear_lr(step: int, total: int, lr: float, lr_end: float) -> float:
    """Learning rate of optimizer step `step` (0-based) of `total`: `lr` at the first, `lr_end` at the last.

    >>> [round(linear_lr(s, 3, 1.0, 0.0), 2) for s in range(3)]
    [1.0, 0.5, 0.0]
    """
    return lr if total <= 1 else lr + (lr_end - lr) * step / (total - 1)


def plan_steps(
    lengths: Sequence[int],
    batch_size: int,
    grad_accum: int,
    epochs: int,
    max_steps: int,
    seed: int,
    world_size: int = 1,
) -> list[tuple[float, list[list[int]]]]:
    """Every optimizer step up front: (epoch reached after it, its micro-batches of example indices, all ranks').

    Each epoch is a fresh seeded shuffle. Within one optimizer step the examples are sorted by length before
    being cut into micro-batches: the step's gradient is the same, but right-padding (wasted compute) shrinks.
    A step holds batch_size x grad_accum x world_size examples; distributed.rank_share deals them to the ranks.
    `max_steps` > 0 caps the run (smoke tests); the LR schedule then decays over the capped run.
    """
    if batch_size <= 0 or grad_accum <= 0 or epochs <= 0:
        raise ValueError("train.batch_size, train.grad_accum and train.epochs must all be > 0")
    steps = []
    per_step = batch_size * grad_accum * world_size
    for epoch in range(epochs):
        order = list(range(len(lengths)))
        random.Random(f"{seed}:{epoch}").shuffle(order)
        for start in range(0, len(order), per_step):
            chunk = sorted(order[start : start + per_step], key=lambda i: lengths[i])
            micro = [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
            steps.append((round(epoch + min(start + per_step, len(order)) / len(order), 4), micro))
    return steps[:max_steps] if max_steps > 0 else steps


def apply_lora(
    model: Any, *, r: int, alpha: int, dropout: float, targets: Sequence[str], new_tokens: Sequence[int] = ()
) -> Any:
    """Wrap `model` in a peft LoRA adapter on the `targets` linear layers; only the adapter trains.

    `new_tokens` (a new EOT token's id) get trainable embedding rows too: without them LoRA never learns to stop.
    """
    from peft import LoraConfig, get_peft_model

    extra = {"trainable_token_indices": list(new_tokens)} if new_tokens else {}
    config = LoraConfig(
        r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(targets), task_type="CAUSAL_LM", **extra
    )
    return get_peft_model(model, config)


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
    new_tokens: Sequence[int] = (),
    seed: int = 0,
    precision: str = "fp32",
    gradient_checkpointing: bool = False,
    log_path: str | Path | None = None,
    progress: bool = True,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 0,
    keep_last: int = 2,
    identity: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
    on_checkpoint: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Fine-tune on `examples` (records.Example, or anything with `.messages`). Returns (trained model, summary).

    For method "lora" the returned model is the peft wrapper: its save_pretrained writes only the adapter.
    Examples left with no response token after trimming are skipped and counted (summary
    "skipped_no_response_tokens"); `precision` is "fp32" (default, reproducible anywhere), "bf16" or "auto".
    With `checkpoint_dir`, a checkpoint is saved at every epoch end, every `checkpoint_every` steps and at the
    last step (`meta` goes into each one's lessismore.json; `on_checkpoint(info)` is called after each, on rank
    0), and the run resumes from the newest checkpoint of the same run: same data, settings, `identity` (the
    caller's extra keys, e.g. the base checkpoint hash) and world size. summary["checkpoints"] lists them.
    """
    import torch

    accelerator, bf16 = make_accelerator(precision)
    torch.manual_seed(seed)  # LoRA init and dropout
    encoded = [encode_example(ex.messages, tokenizer, max_tokens) for ex in examples]
    usable = [e for e in encoded if any(label != IGNORE_INDEX for label in e["labels"])]
    if not usable:
        raise ValueError(f"no example keeps a response token after trimming to {max_tokens} tokens; raise max_tokens")
    if method not in ("lora", "full"):
        raise ValueError(f"train.method {method!r}: use 'lora' or 'full'")
    if gradient_checkpointing:  # recompute activations in backward: less memory, ~30% more compute
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    if method == "lora":
        model = apply_lora(
            model, r=lora_r, alpha=lora_alpha, dropout=lora_dropout, targets=lora_targets, new_tokens=new_tokens
        )
    world, rank = accelerator.num_processes, accelerator.process_index
    plan = plan_steps([len(e["input_ids"]) for e in usable], batch_size, grad_accum, epochs, max_steps, seed, world)
    settings = dict(
        method=method,
        epochs=epochs,
        max_steps=max_steps,
        lr=lr,
        lr_end=lr_end,
        batch_size=batch_size,
        grad_accum=grad_accum,
        weight_decay=weight_decay,
        betas=list(betas),
        lora=[lora_r, lora_alpha, lora_dropout, list(lora_targets)],
        seed=seed,
        bf16=bf16,
        world_size=world,
        extra=identity or {},
        checkpoint_format=2,
    )
    data = [[e["input_ids"], e["labels"]] for e in usable]
    settings["data"] = run_identity(data, {})  # kept in state.json, so a restart can say what changed
    run_id = run_identity(data, settings)
    ckpt = None
    if checkpoint_dir is not None:
        ckpt, stale = latest_matching(checkpoint_dir, run_id)
        if stale and accelerator.is_main_process:
            changed = "; ".join(run_changes(stale[-1].get("settings"), settings))
            print(
                f"train: {len(stale)} checkpoint(s) in {checkpoint_dir} are of another run (changed: {changed}): "
                f"removed{'; starting over' if ckpt is None else ''}"
            )
            remove(stale)
        accelerator.wait_for_everyone()
    if ckpt is not None:
        load_weights(model, ckpt["path"])
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=weight_decay)
    # together: under FSDP2 accelerate shards the model and points the optimizer at the sharded parameters
    model, optimizer = accelerator.prepare(model, optimizer)
    resumed: dict[str, Any] = {}
    if ckpt is not None:
        resumed, rng = load_trainer_state(ckpt["path"], rank)
        load_optimizer(model, optimizer.optimizer, ckpt["path"])  # each rank its own shard of the AdamW state
        if rng:
            set_rng_state(rng)  # dropout continues exactly where the interrupted run was
        if accelerator.is_main_process:
            print(f"train: resuming run {run_id} from {ckpt['path']} (step {ckpt['step']} of {len(plan)})")
    elif world > 1:
        torch.manual_seed(seed + rank)  # each rank its own dropout masks (the weights are broadcast from rank 0)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    runner = Runner(
        accelerator,
        model,
        optimizer,
        tokenizer,
        usable,
        plan,
        pad_id,
        (lr, lr_end),
        batch_size,
        (run_id, settings),
        checkpoint_dir,
        checkpoint_every,
        keep_last,
        meta or {},
        on_checkpoint,
    )
    summary = runner.run(resumed, log_path, progress and accelerator.is_main_process, f"train ({method})")
    model = accelerator.unwrap_model(model, keep_fp32_wrapper=False)
    summary.update(
        method=method,
        precision="bf16" if bf16 else "fp32",
        examples=len(examples),
        world_size=world,
        skipped_no_response_tokens=len(examples) - len(usable),
        trainable_params=sum(p.numel() for p in params),
        total_params=sum(p.numel() for p in model.parameters()),
        resumed_from_step=ckpt["step"] if ckpt else 0,
        run_identity=run_id,
    )
    return model, summary


def save_model(
    model: Any, tokenizer: Any, out_dir: str | Path, info: dict[str, Any], state_dict: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Save weights (an adapter only, for LoRA) + tokenizer + lessismore.json; returns the json with its checkpoint.

    `info` should carry method, base and base_checkpoint; the checkpoint hash covers the base's for adapters.
    `state_dict` is for sharded (FSDP) models: the full state dict gathered by accelerator.get_state_dict.
    """
    import json

    from lessismore.generate.loading import META_FILE, checkpoint_hash

    out = Path(out_dir)
    model.save_pretrained(out, **({"state_dict": state_dict} if state_dict is not None else {}))  # safetensors
    tokenizer.save_pretrained(out)
    (out / META_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    meta = {**info, "checkpoint": checkpoint_hash(out)}  # reads base_checkpoint from the file just written
    (out / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return meta
