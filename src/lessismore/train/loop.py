"""The train stage's core: a plain PyTorch loop, LoRA (peft) or full fine-tune, resumable, under accelerate.

LIMA's recipe (section 3): loss on the responses only (collate.py), AdamW with beta1 0.9 / beta2 0.95 and weight
decay 0.1, a learning rate decaying linearly from `lr` to `lr_end` over all optimizer steps with NO warmup, and
gradient accumulation up to the effective batch. The loss is the token-weighted mean over every response token of
an optimizer step (on every rank together), so accumulation and data parallelism give exactly the big batch's
gradient. Every step is planned up front from the seed (`plan_steps`), which is what makes a resume exact:
checkpoints.py saves weights, the optimizer state (sharded per rank), RNG states and totals; a re-run continues
from the newest one.
distributed.py holds the accelerate side (one process, DDP, FSDP; bf16); steplog.py the per-step DVCLive log.
With `train.packing` each step's examples are packed into rows of max_tokens (collate.pack: padding-free, each
example attending to itself only), the same examples and summed loss as unpacked, so the same gradient; the loss
runs in chunks of `train.loss_chunk` labelled tokens (loss.py), never holding the full-vocabulary logits.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lessismore.errors import BadValue
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
from lessismore.train.distributed import make_accelerator, return_freed_memory
from lessismore.train.runner import Runner

if TYPE_CHECKING:
    from lessismore.config import Train

__all__ = ["TrainRun", "apply_lora", "linear_schedule", "plan_steps", "train"]

CHECKPOINT_FORMAT = 3  # part of the run identity: checkpoints of another format are another run (3: scheduler state)


@dataclass(frozen=True)
class TrainRun:
    """Where one training run writes, and what it records: the wiring of a run, not its hyperparameters (those are
    the Train spec). Without a checkpoint_dir nothing is saved or resumed; without a log_dir no step log is kept."""

    checkpoint_dir: Path | None = None
    log_dir: Path | None = None  # the DVCLive folder of the per-step log (steplog.py): the run's own values
    perf_dir: Path | None = None  # ... and of the machine's (tokens/s, seconds, memory), kept apart: volatile
    identity: dict[str, Any] = field(default_factory=dict)  # the caller's extra run keys (e.g. the base's hash)
    meta: dict[str, Any] = field(default_factory=dict)  # into each checkpoint's lessismore.json
    progress: bool = True
    on_checkpoint: Callable[[dict[str, Any]], None] | None = None  # called on rank 0 after each checkpoint


def linear_schedule(optimizer: Any, total: int, lr: float, lr_end: float) -> Any:
    """LIMA's schedule as a torch LR scheduler: `lr` at the first optimizer step, `lr_end` at the last, linear in
    between, no warmup (transformers' polynomial decay with power 1 over the `total - 1` steps between them).

    >>> import torch
    >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    >>> sched = linear_schedule(opt, 3, 1.0, 0.0)
    >>> lrs = []
    >>> for _ in range(3):
    ...     lrs.append(round(sched.get_last_lr()[0], 2))
    ...     opt.step()
    ...     sched.step()
    >>> lrs
    [1.0, 0.5, 0.0]
    """
    from transformers import get_constant_schedule, get_polynomial_decay_schedule_with_warmup

    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.defaults["lr"] = lr  # what transformers reads as the initial rate
    if lr_end >= lr:  # no decay asked for (transformers' polynomial decay refuses lr_end == lr)
        return get_constant_schedule(optimizer)
    return get_polynomial_decay_schedule_with_warmup(
        optimizer, num_warmup_steps=0, num_training_steps=max(total - 1, 1), lr_end=lr_end, power=1.0
    )


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
        raise BadValue("train.batch_size, train.grad_accum and train.epochs must all be > 0")
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
    spec: Train,
    *,
    seed: int,
    run: TrainRun = TrainRun(),
    new_tokens: Sequence[int] = (),
) -> tuple[Any, dict[str, Any]]:
    """Fine-tune on `examples` (records.Example, or anything with `.messages`) as params' train section `spec`
    says. Returns (trained model, summary).

    For method "lora" the returned model is the peft wrapper: its save_pretrained writes only the adapter.
    `new_tokens` (a new EOT token's id) get trainable embedding rows under LoRA. Examples left with no response
    token after trimming are skipped and counted (summary "skipped_no_response_tokens").
    With `run.checkpoint_dir`, a checkpoint is saved at every epoch end, every `spec.checkpoint_every` steps and at
    the last step, and the run resumes from the newest checkpoint of the same run: same data, settings,
    `run.identity` and world size. summary["checkpoints"] lists them.
    """
    import torch

    accelerator, bf16 = make_accelerator(spec.precision)
    return_freed_memory()
    torch.manual_seed(seed)  # LoRA init and dropout
    encoded = [encode_example(ex.messages, tokenizer, spec.max_tokens) for ex in examples]
    usable = [e for e in encoded if any(label != IGNORE_INDEX for label in e["labels"])]
    if not usable:
        raise BadValue(
            f"no example keeps a response token after trimming to {spec.max_tokens} tokens; raise train.max_tokens"
        )
    if spec.gradient_checkpointing:  # recompute activations in backward: less memory, ~30% more compute
        model.activation_checkpointing_enable(
            activation_checkpointing_kwargs={"use_reentrant": False}, every_n_layers=spec.checkpoint_layers_every
        )
    if spec.method == "lora":
        model = apply_lora(
            model,
            r=spec.lora_r,
            alpha=spec.lora_alpha,
            dropout=spec.lora_dropout,
            targets=spec.lora_targets,
            new_tokens=new_tokens,
        )
    if spec.lean:  # the same gradient, fewer tensors kept for the backward (lean.py); after peft wrapped it
        from lessismore.train.lean import lean_layers

        lean_layers(model)
    world, rank = accelerator.num_processes, accelerator.process_index
    lengths = [len(e["input_ids"]) for e in usable]
    plan = plan_steps(lengths, spec.batch_size, spec.grad_accum, spec.epochs, spec.max_steps, seed, world)
    settings = run_settings(spec, seed=seed, bf16=bf16, world=world, extra=run.identity)
    data = [[e["input_ids"], e["labels"]] for e in usable]
    settings["data"] = run_identity(data, {})  # kept in state.json, so a restart can say what changed
    run_id = run_identity(data, settings)
    ckpt = _latest_of_run(run.checkpoint_dir, run_id, settings, accelerator)
    if ckpt is not None:
        load_weights(model, ckpt["path"])
    params = [p for p in model.parameters() if p.requires_grad]
    if spec.compile:  # off by default: see params.yaml train.compile for what it measured
        model = torch.compile(model)
    betas = (spec.adam_beta1, spec.adam_beta2)
    optimizer = torch.optim.AdamW(params, lr=spec.lr, betas=betas, weight_decay=spec.weight_decay)
    # together: under FSDP2 accelerate shards the model and points the optimizer at the sharded parameters
    model, optimizer = accelerator.prepare(model, optimizer)
    schedule = linear_schedule(optimizer.optimizer, len(plan), spec.lr, spec.lr_end)
    resumed: dict[str, Any] = {}
    if ckpt is not None:
        resumed, rng = load_trainer_state(ckpt["path"], rank)
        load_optimizer(model, optimizer.optimizer, ckpt["path"])  # each rank its own shard of the AdamW state
        schedule.load_state_dict(resumed["scheduler"])
        if rng:
            set_rng_state(rng)  # dropout continues exactly where the interrupted run was
        if accelerator.is_main_process:
            print(f"train: resuming run {run_id} from {ckpt['path']} (step {ckpt['step']} of {len(plan)})")
    elif world > 1:
        torch.manual_seed(seed + rank)  # each rank its own dropout masks (the weights are broadcast from rank 0)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    runner = Runner(
        accelerator, model, optimizer, schedule, tokenizer, usable, plan, pad_id, spec, run, run_id, settings
    )
    summary = runner.run(resumed, f"train ({spec.method})")
    model = accelerator.unwrap_model(model, keep_fp32_wrapper=False, keep_torch_compile=False)
    summary.update(
        method=spec.method,
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


def run_settings(spec: Train, *, seed: int, bf16: bool, world: int, extra: dict[str, Any]) -> dict[str, Any]:
    """What names a run besides its data: every train param that changes the weights, and how it ran.

    checkpoint_every, keep_last and the select* keys are left out: they change what is kept, not the weights.
    """
    kept = ("checkpoint_every", "keep_last", "select", "select_epochs", "select_judge", "select_decoding")
    chosen = {k: v for k, v in dataclasses.asdict(spec).items() if k not in kept}
    settings = {**chosen, "seed": seed, "bf16": bf16, "world_size": world, "extra": extra, "format": CHECKPOINT_FORMAT}
    return json.loads(json.dumps(settings))  # as state.json will hold them (tuples become lists), to compare alike


def _latest_of_run(root: Path | None, run_id: str, settings: dict[str, Any], accelerator: Any) -> dict | None:
    """The newest checkpoint of this run under `root`; other runs' checkpoints are removed, saying what changed."""
    if root is None:
        return None
    ckpt, stale = latest_matching(root, run_id)
    if stale and accelerator.is_main_process:
        changed = "; ".join(run_changes(stale[-1].get("settings"), settings))
        again = "; starting over" if ckpt is None else ""
        print(f"train: {len(stale)} checkpoint(s) in {root} are of another run (changed: {changed}): removed{again}")
        remove(stale)
    accelerator.wait_for_everyone()
    return ckpt
