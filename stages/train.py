"""DVC stage `train`: data/curated/train.jsonl + models/base/ -> models/finetuned/ (with its model card), checkpoints,
metrics and the per-step log.

LoRA (the demo) saves only the adapter, its tokenizer and lessismore.json naming the base and both checkpoint
hashes; a full fine-tune saves the whole model as safetensors. models/finetuned/README.md is its Hugging Face
model card.
The per-step log is DVCLive's (logs/train/): `dvc plots` and `dvc exp show` read it. models/checkpoints/ holds a
checkpoint at each epoch end and every `train.checkpoint_every` steps (the last `train.keep_last` step ones are kept,
every epoch-end one too); DVC keeps it between runs (`persist: true`), so re-running after a crash or a kill
resumes from the newest checkpoint of the same run (same data, train params and base checkpoint).
Runs as is on one process, or on several with `accelerate launch --config_file infra/accelerate/<config>.yaml
stages/train.py`; then only rank 0 writes.
Before training: LIMA's end-of-turn (train.eot) and residual dropout (train.residual_dropout). After: with
train.select dev_loss, `dev_holdout` curated examples are kept out of training and the epoch-end checkpoint with the
lowest loss on them becomes models/finetuned/; with train.select judge (LIMA: epochs 5-10 chosen by judging dev
answers),
each candidate epoch answers the dev prompts and the judge train.select_judge compares them with the base model's
answers (judge/dev.py; verdicts cached in models/checkpoints/dev_judgments.jsonl); the highest preference rate wins.
metrics/train.json records the candidates, their scores and why the chosen one won.
"""

from __future__ import annotations

import hashlib
import shutil

from lessismore import contract as c
from lessismore import records
from lessismore.cards import model_card, source_mix
from lessismore.config import load_params
from lessismore.errors import NotFound, run_stage
from lessismore.models import checkpoint_hash, load_causal_lm
from lessismore.train.checkpoints import copy_model
from lessismore.train.distributed import is_main_process, machine
from lessismore.train.dropout import apply_residual_dropout
from lessismore.train.eot import prepare_eot
from lessismore.train.loop import TrainRun, train
from lessismore.train.select import dev_loss_scorer, holdout_split, select_checkpoint, train_metrics


def main() -> None:
    # ---------------------------------------------------------------- params and inputs
    params = load_params(stage="train")
    t, seed = params.train, params.base.seed
    examples = records.read_jsonl(c.TRAIN_SET, records.Example)
    if not examples:
        raise NotFound(f"{c.TRAIN_SET}: no training examples; run `dvc repro curate` and check metrics/curate.json")
    dev: list[records.Example] = []
    if t.select == "dev_loss":
        examples, dev = holdout_split(examples, min(t.dev_holdout, len(examples) - 1), seed=seed)
    model, tokenizer = load_causal_lm(c.BASE_MODEL)  # fp32 on CPU; train() places it and switches it to train mode
    model, tokenizer, eot = prepare_eot(model, tokenizer, t.eot)  # before LoRA wraps the embeddings
    new_tokens = [tokenizer.convert_tokens_to_ids(eot)] if t.eot == "new_token" else []
    dropout_rates = apply_residual_dropout(model, t.residual_dropout) if t.residual_dropout > 0 else []
    base_checkpoint = checkpoint_hash(c.BASE_MODEL)
    info = {"method": t.method, "base": str(c.BASE_MODEL), "base_checkpoint": base_checkpoint}

    # ---------------------------------------------------------------- train (resumes from models/checkpoints/)
    wiring = TrainRun(
        checkpoint_dir=c.CHECKPOINTS,
        log_dir=c.TRAIN_LOG,
        perf_dir=c.TRAIN_PERF,
        identity={"base_checkpoint": base_checkpoint},
        meta=info,
    )
    _, summary = train(model, tokenizer, examples, t, seed=seed, run=wiring, new_tokens=new_tokens)
    if not is_main_process():
        return  # rank 0 writes the outputs

    # ---------------------------------------------------------------- choose the epoch, save
    shutil.rmtree(c.FINAL_MODEL, ignore_errors=True)  # no stale weights of another method may survive
    # the epoch ends compete; a smoke run cut by max_steps mid-epoch has only its last checkpoint
    candidates = [ck for ck in summary["checkpoints"] if ck["epoch_end"]] or summary["checkpoints"][-1:]
    score = dev_loss_scorer(dev, t.max_tokens, load_causal_lm) if t.select == "dev_loss" else None
    if t.select == "judge":
        score = judge_epochs(params)
    chosen, selection = select_checkpoint(candidates, score, mode=t.select, epochs=t.select_epochs)
    # every checkpoint is a complete model dir (gathered from the shards under FSDP), the last step's included
    copy_model(chosen["path"], c.FINAL_MODEL)

    # ---------------------------------------------------------------- metrics and the model card
    final = {"checkpoint": checkpoint_hash(c.FINAL_MODEL), "base_checkpoint": base_checkpoint}
    extra = {"eot": {"mode": t.eot, "token": eot}, "residual_dropout": dropout_rates, "dev_holdout": len(dev)}
    metrics = train_metrics(summary, selection, method=t.method, **final, **extra)
    records.write_json(c.metrics("train"), metrics)
    timing = {"seconds": round(summary["seconds"], 1), "tokens_per_s": round(summary["tokens_per_s"], 1)}
    timing["machine"] = machine()
    records.write_json(c.timing("train"), timing)
    mix = source_mix([ex.origin.source for ex in examples])  # what it trained on (dev_holdout examples apart)
    card = model_card(
        experiment=params.base.experiment,
        base=params.model,
        spec=t,
        metrics=metrics,
        mix=mix,
        dataset_md5=hashlib.md5(c.TRAIN_SET.read_bytes()).hexdigest(),
    )
    c.MODEL_CARD.write_text(card, encoding="utf-8")
    print(f"train: {summary['steps']} steps, loss {metrics['final_loss']}, {timing['tokens_per_s']} tok/s")


def judge_epochs(params):
    """select judge: the configured judge scores each candidate epoch's dev answers against the base model's."""
    from lessismore.judge.dev import epoch_scorer

    prompts = [p.text for p in records.read_parquet(c.VALIDATED / c.PROMPTS, records.Prompt) if p.split == "dev"]
    if not prompts:
        raise NotFound(
            f"{c.VALIDATED / c.PROMPTS}: no dev prompts for train.select judge; add a source with split: dev"
        )
    t = params.train
    cache = c.CHECKPOINTS / "dev_judgments.jsonl"  # kept with the checkpoints between runs
    return epoch_scorer(
        t.select_judge, t.select_decoding, prompts, base_dir=c.BASE_MODEL, cache_path=cache, seed=params.base.seed
    )


if __name__ == "__main__":
    run_stage("train", main)
