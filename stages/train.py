"""DVC stage `train`: data/curated/train.jsonl + models/base/ -> models/final/, checkpoints, metrics and step log.

LoRA (the demo) saves only the adapter, its tokenizer and lessismore.json naming the base and both checkpoint
hashes; a full fine-tune saves the whole model as safetensors. The per-step CSV feeds `dvc plots` (x=step, y=loss).
models/checkpoints/ holds a checkpoint at each epoch end and every `train.checkpoint_every` steps (the last 2 step
ones are kept, every epoch-end one too); DVC keeps it between runs (`persist: true`), so re-running after a crash
or a kill resumes from the newest checkpoint of the same run (same data, train params and base checkpoint).
Runs as is on one process, or on several with `accelerate launch --config_file infra/accelerate/<config>.yaml
stages/train.py`; then only rank 0 writes.
Before training: LIMA's end-of-turn (train.eot) and residual dropout (train.residual_dropout). After: with
train.select dev_loss, `dev_holdout` curated examples are kept out of training and the epoch-end checkpoint with the
lowest loss on them becomes models/final/; with train.select judge (LIMA: epochs 5-10 chosen by judging dev answers),
each candidate epoch answers the dev prompts (decoded by train.select_decoding) and the judge entry
train.select_judge compares them with the base model's answers in both orders (judge/dev.py; its verdicts are
cached in models/checkpoints/dev_judgments.jsonl); the highest preference rate wins. metrics/train.json records the
candidates, their scores and why the chosen one won.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from lessismore import records
from lessismore.config import load_params
from lessismore.generate.loading import checkpoint_hash, load_causal_lm
from lessismore.train.checkpoints import copy_model
from lessismore.train.distributed import is_main_process
from lessismore.train.dropout import apply_residual_dropout
from lessismore.train.eot import prepare_eot
from lessismore.train.loop import train
from lessismore.train.select import CheckpointScore, dev_loss_scorer, holdout_split, judge_scorer, select_checkpoint

TRAIN = Path("data/curated/train.jsonl")
PROMPTS = Path("data/validated/prompts.parquet")  # select judge: the dev prompts
BASE = Path("models/base")
OUT = Path("models/final")
CHECKPOINTS = Path("models/checkpoints")
METRICS = Path("metrics/train.json")
STEP_LOG = Path("logs/train_steps.csv")
NOT_IN_RUN_IDENTITY = (
    "checkpoint_every",
    "select",
    "select_epochs",
    "select_judge",
)  # they change what is kept, not the weights


def judge_epochs(params) -> CheckpointScore:
    """select judge: the configured judge scores each candidate's dev answers against the base model's."""
    from lessismore.generate.transformers_backend import TransformersBackend
    from lessismore.judge import load_template
    from lessismore.judge.cache import VerdictCache
    from lessismore.judge.dev import dev_judge
    from lessismore.judge.factory import open_judge

    prompts = [p.text for p in records.read_parquet(PROMPTS, records.Prompt) if p.split == "dev"]
    if not prompts:
        raise SystemExit(f"{PROMPTS}: no dev prompts for train.select judge; add a source with split: dev")
    spec, d = params.train.select_judge, params.train.select_decoding
    lima = dict(
        max_new_tokens=d.max_new_tokens,
        top_p=d.top_p,
        temperature=d.temperature,
        repetition_penalty=d.repetition_penalty,
        seed=params.base.seed,
        batch_size=d.batch_size,
    )

    def answers_of(candidate) -> TransformersBackend:
        return TransformersBackend(*load_causal_lm(candidate["path"]), **lima)

    reference = [r.text for r in answers_of({"path": BASE}).generate(prompts)]
    backend, run = open_judge(spec, {"base": BASE}, params.base.seed, section="train.select_judge")
    cache = VerdictCache(CHECKPOINTS / "dev_judgments.jsonl")  # kept with the checkpoints between runs
    return judge_scorer(prompts, dev_judge(backend, load_template(spec.template), run, reference, cache), answers_of)


def main() -> None:
    # ---------------------------------------------------------------- params and inputs
    params = load_params()
    t = params.train
    examples = records.read_jsonl(TRAIN, records.Example)
    if not examples:
        raise SystemExit(f"{TRAIN}: no training examples; run `dvc repro curate` and check metrics/curate.json")
    dev: list[records.Example] = []
    if t.select == "dev_loss":
        examples, dev = holdout_split(examples, min(t.dev_holdout, len(examples) - 1), seed=params.base.seed)
    model, tokenizer = load_causal_lm(BASE)  # fp32 on CPU; train() places it and switches it to train mode
    model, tokenizer, eot = prepare_eot(model, tokenizer, t.eot)  # before LoRA wraps the embeddings
    new_tokens = [tokenizer.convert_tokens_to_ids(eot)] if t.eot == "new_token" else []
    dropout_rates = apply_residual_dropout(model, t.residual_dropout) if t.residual_dropout > 0 else []
    base_checkpoint = checkpoint_hash(BASE)
    info = {"method": t.method, "base": str(BASE), "base_checkpoint": base_checkpoint}
    identity = {k: v for k, v in dataclasses.asdict(t).items() if k not in NOT_IN_RUN_IDENTITY}

    # ---------------------------------------------------------------- train (resumes from models/checkpoints/)
    _, summary = train(
        model,
        tokenizer,
        examples,
        max_tokens=t.max_tokens,
        method=t.method,
        epochs=t.epochs,
        max_steps=t.max_steps,
        lr=t.lr,
        lr_end=t.lr_end,
        batch_size=t.batch_size,
        grad_accum=t.grad_accum,
        weight_decay=t.weight_decay,
        betas=(t.adam_beta1, t.adam_beta2),
        lora_r=t.lora_r,
        lora_alpha=t.lora_alpha,
        lora_dropout=t.lora_dropout,
        lora_targets=t.lora_targets,
        seed=params.base.seed,
        precision=t.precision,
        gradient_checkpointing=t.gradient_checkpointing,
        log_path=STEP_LOG,
        checkpoint_dir=CHECKPOINTS,
        checkpoint_every=t.checkpoint_every,
        identity={**identity, "base_checkpoint": base_checkpoint},
        meta=info,
        new_tokens=new_tokens,
    )
    if not is_main_process():
        return  # rank 0 writes the outputs

    # ---------------------------------------------------------------- save
    shutil.rmtree(OUT, ignore_errors=True)  # no stale weights from a previous method may survive next to the new ones
    # the epoch ends compete; a smoke run cut by max_steps mid-epoch has only its last checkpoint
    candidates = [c for c in summary["checkpoints"] if c["epoch_end"]] or summary["checkpoints"][-1:]
    score = dev_loss_scorer(dev, t.max_tokens, load_causal_lm) if t.select == "dev_loss" else None
    score = judge_epochs(params) if t.select == "judge" else score
    chosen, selection = select_checkpoint(candidates, score, mode=t.select, epochs=t.select_epochs)
    # every checkpoint is a complete model dir (gathered from the shards under FSDP), the last step's included
    copy_model(chosen["path"], OUT)
    meta = {**info, "checkpoint": checkpoint_hash(OUT), "base_checkpoint": base_checkpoint}

    # ---------------------------------------------------------------- metrics
    metrics = {
        "counts": {"examples": summary["examples"]},  # records only: the report charts counts on one scale
        "steps": summary["steps"],
        "tokens": summary["tokens"],
        "skipped_no_response_tokens": summary["skipped_no_response_tokens"],
        "response_tokens": summary["response_tokens"],
        "epochs": summary["epochs"],
        "final_loss": round(summary["final_loss"], 4),
        "mean_loss_last_10": round(summary["mean_loss_last_10"], 4),
        "tokens_per_s": round(summary["tokens_per_s"], 1),
        "seconds": round(summary["seconds"], 1),
        "method": t.method,
        "trainable_params": summary["trainable_params"],
        "checkpoint": meta["checkpoint"],
        "base_checkpoint": meta["base_checkpoint"],
        "precision": summary["precision"],
        "world_size": summary["world_size"],
        "resumed_from_step": summary["resumed_from_step"],
        "checkpoints": [{k: c[k] for k in ("step", "epoch", "epoch_end", "path")} for c in summary["checkpoints"]],
        "selection": selection,
        "eot": {"mode": t.eot, "token": eot},
        "residual_dropout": dropout_rates,
        "dev_holdout": len(dev),
    }
    records.write_json(METRICS, metrics)
    print(f"train: {summary['steps']} steps, loss {metrics['final_loss']}, {metrics['tokens_per_s']} tok/s -> {OUT}")


if __name__ == "__main__":
    main()
