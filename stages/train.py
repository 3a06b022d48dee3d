"""DVC stage `train`: data/curated/train.jsonl + models/base/ -> models/final/, metrics/train.json and the step log.

LoRA (the demo) saves only the adapter, its tokenizer and lessismore.json naming the base and both checkpoint
hashes; a full fine-tune saves the whole model as safetensors. The per-step CSV feeds `dvc plots` (x=step, y=loss).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from lessismore import records
from lessismore.config import load_params
from lessismore.generate.loading import checkpoint_hash, load_causal_lm
from lessismore.train.loop import save_model, train

TRAIN = Path("data/curated/train.jsonl")
BASE = Path("models/base")
OUT = Path("models/final")
METRICS = Path("metrics/train.json")
STEP_LOG = Path("logs/train_steps.csv")


def main() -> None:
    # ---------------------------------------------------------------- params and inputs
    params = load_params()
    t = params.train
    examples = records.read_jsonl(TRAIN, records.Example)
    if not examples:
        raise SystemExit(f"{TRAIN}: no training examples; run `dvc repro curate` and check metrics/curate.json")
    model, tokenizer = load_causal_lm(BASE)  # fp32 on CPU; train() switches it to train mode

    # ---------------------------------------------------------------- train
    model, summary = train(
        model, tokenizer, examples, max_tokens=t.max_tokens, method=t.method, epochs=t.epochs,
        max_steps=t.max_steps, lr=t.lr, lr_end=t.lr_end, batch_size=t.batch_size, grad_accum=t.grad_accum,
        weight_decay=t.weight_decay, betas=(t.adam_beta1, t.adam_beta2), lora_r=t.lora_r, lora_alpha=t.lora_alpha,
        lora_dropout=t.lora_dropout, lora_targets=t.lora_targets, seed=params.base.seed, log_path=STEP_LOG,
    )  # fmt: skip

    # ---------------------------------------------------------------- save
    shutil.rmtree(OUT, ignore_errors=True)  # no stale weights from a previous method may survive next to the new ones
    meta = save_model(
        model, tokenizer, OUT, {"method": t.method, "base": str(BASE), "base_checkpoint": checkpoint_hash(BASE)}
    )

    # ---------------------------------------------------------------- metrics
    metrics = {
        "counts": {"examples": summary["examples"]},  # records only: the report charts counts on one scale
        "steps": summary["steps"], "tokens": summary["tokens"],
        "skipped_no_response_tokens": summary["skipped_no_response_tokens"],
        "response_tokens": summary["response_tokens"], "epochs": summary["epochs"],
        "final_loss": round(summary["final_loss"], 4), "mean_loss_last_10": round(summary["mean_loss_last_10"], 4),
        "tokens_per_s": round(summary["tokens_per_s"], 1), "seconds": round(summary["seconds"], 1),
        "method": t.method, "trainable_params": summary["trainable_params"], "checkpoint": meta["checkpoint"],
        "base_checkpoint": meta["base_checkpoint"],
    }  # fmt: skip
    records.write_json(METRICS, metrics)
    print(f"train: {summary['steps']} steps, loss {metrics['final_loss']}, {metrics['tokens_per_s']} tok/s -> {OUT}")


if __name__ == "__main__":
    main()
