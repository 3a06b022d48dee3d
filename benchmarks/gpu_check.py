"""`make gpu-check`: the GPU paths on one GPU, one command, one table, in at most 8 minutes on an H100/H200.

Rows, each measured in its own process (so each peak is its own):
- train: a 1.1B-parameter Llama with random weights (TinyLlama's shape, the base's tokenizer; nothing downloaded),
  bf16 autocast: a full fine-tune packed, the same unpacked, packed with gradient checkpointing, and the LoRA path,
  each with tokens/s, MFU against the device's dense bf16 peak (goal >= 45% for the full fine-tune) and peak memory
  (benchmarks/train_throughput.py's own runner);
- generate: vLLM against the transformers backend, the base model, the same prompts and decoding: tokens/s ratio;
- pytest -m gpu: the project's GPU tests.

    python benchmarks/gpu_check.py             # on a GPU (make gpu-check installs the vllm extra first)
    python benchmarks/gpu_check.py --dry-run   # the same rows on a tiny random model, in a minute; what a
                                               # machine without CUDA always runs

The dry run is what `make test` runs (tests/integration/test_gpu_check.py), so the script cannot rot between the
sessions that are lent a GPU. Rows it cannot run say why in the table (vLLM without CUDA; the GPU tests on a CPU
are collected, not run). Exit status 1 when a row that should have run failed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _train import base_model_dir, flops_per_token, peak_flops

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TRAIN = [  # (row, train_throughput.py flags)
    ("full bf16, packed", ["--method", "full"]),
    ("full bf16, unpacked", ["--method", "full", "--unpacked"]),
    ("full bf16, packed, grad. checkpointing", ["--method", "full", "--gradient-checkpointing"]),
    ("LoRA bf16, packed", ["--method", "lora"]),
]
SIZES = {  # what each mode trains: the LIMA-scale check on a GPU, a smoke-sized one on a CPU
    "gpu": {"arch": "llama-1b", "max_tokens": 2048, "batch_size": 4, "grad_accum": 2, "steps": 8, "prompts": 64},
    "dry": {"arch": "tiny", "max_tokens": 128, "batch_size": 2, "grad_accum": 1, "steps": 2, "prompts": 4},
}


def train_row(name: str, flags: list[str], size: dict, model_dir: str, peak: float | None) -> dict:
    cmd = [sys.executable, str(HERE / "train_throughput.py"), "--runner", "ours", "--model", model_dir]
    cmd += ["--arch", size["arch"], "--precision", "bf16", "--steps", str(size["steps"])]
    cmd += ["--max-tokens", str(size["max_tokens"]), "--batch-size", str(size["batch_size"])]
    cmd += ["--grad-accum", str(size["grad_accum"]), *flags]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    if done.returncode or line is None:
        return {"row": name, "status": "FAILED", "note": done.stderr.strip().splitlines()[-1:] or ["no output"]}
    r = json.loads(line[len("RESULT ") :])
    rate = r["tokens"] / r["seconds"]
    method = flags[flags.index("--method") + 1]
    per_token = flops_per_token(argparse.Namespace(**r["config"]), r["seq_len"], method)
    return {
        "row": name,
        "status": "ok",
        "tokens/s": f"{rate:,.0f}",
        "MFU": f"{rate * per_token / peak:.1%}" if peak else "n/a (no bf16 peak for a CPU)",
        "peak memory": f"{r['peak_mib']:,.0f} MiB",
        "seconds": f"{time.perf_counter() - start:.0f}",
        "note": f"last loss {r['final_loss']:.3f}",
    }


def generate_rows(model_dir: str, prompts: int, gpu: bool) -> list[dict]:
    """The transformers backend, then vLLM, on the same prompts and decoding; the ratio on the vLLM row."""
    from lessismore.generate.transformers_backend import TransformersBackend
    from lessismore.models import load_causal_lm

    texts = [f"Explain step {i} of making bread, briefly." for i in range(prompts)]
    lima = {"max_new_tokens": 64, "top_p": 0.9, "temperature": 0.7, "repetition_penalty": 1.2, "seed": 1234}
    model, tokenizer = load_causal_lm(model_dir)
    if gpu:
        model = model.to("cuda")
    backend = TransformersBackend(model, tokenizer, batch_size=16, progress=False, **lima)
    start = time.perf_counter()
    tokens = sum(r.new_tokens for r in backend.generate(texts))
    hf_rate = tokens / (time.perf_counter() - start)
    rows = [{"row": "generate: transformers", "status": "ok", "tokens/s": f"{hf_rate:,.1f}", "note": ""}]
    del model
    if not gpu:
        return rows + [{"row": "generate: vLLM", "status": "not run", "note": "dry run: vLLM needs CUDA"}]
    if importlib.util.find_spec("vllm") is None:
        note = "vllm not installed: pip install -e '.[vllm]'"
        return rows + [{"row": "generate: vLLM", "status": "FAILED", "note": note}]
    from lessismore.generate.vllm_backend import VLLMBackend

    vllm = VLLMBackend(model_dir, batch_size=256, gpu_memory_utilization=0.5, **lima)
    start = time.perf_counter()
    tokens = sum(r.new_tokens for r in vllm.generate(texts))
    rate = tokens / (time.perf_counter() - start)
    note = f"vLLM/transformers = {rate / hf_rate:.2f}"
    return rows + [{"row": "generate: vLLM", "status": "ok", "tokens/s": f"{rate:,.1f}", "note": note}]


def pytest_row(gpu: bool) -> dict:
    cmd = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider"]
    done = subprocess.run(cmd + ([] if gpu else ["--collect-only"]), capture_output=True, text=True, cwd=REPO)
    last = (done.stdout.strip().splitlines() or ["no output"])[-1]
    if not gpu:
        status = "not run" if done.returncode == 0 else "FAILED"  # 5: none collected, the marker lost its tests
        return {"row": "pytest -m gpu", "status": status, "note": f"dry run, collected only: {last}"}
    return {"row": "pytest -m gpu", "status": "ok" if done.returncode == 0 else "FAILED", "note": last}


def table(rows: list[dict]) -> str:
    cols = ["row", "status", "tokens/s", "MFU", "peak memory", "seconds", "note"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="on a CPU: a tiny model, the same rows")
    parser.add_argument("--model", default="models/base", help="the base checkpoint (tokenizer; generation)")
    parser.add_argument("--peak-tflops", type=float, help="the device's dense bf16 peak, if not in PEAK_BF16")
    args = parser.parse_args()
    import torch

    gpu = torch.cuda.is_available()
    if not gpu and not args.dry_run:
        print("gpu_check: no CUDA device here: a dry run on the CPU", file=sys.stderr)
        args.dry_run = True
    size = SIZES["dry" if args.dry_run else "gpu"]
    device = torch.cuda.get_device_name() if gpu else "CPU"
    peak = peak_flops(device, args.peak_tflops)
    start = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model
        if args.dry_run:  # a tiny random Llama with its own tokenizer: no wheel, no conversion
            from lessismore.config import Tiny
            from lessismore.train.base_model import build_tiny_random

            shape = Tiny(vocab_size=512, hidden_size=64, layers=2, heads=4)
            model_dir = str(build_tiny_random(Path(tmp) / "tiny", shape, seed=0))
        elif not (Path(model_dir) / "config.json").exists():
            model_dir = base_model_dir(model_dir, tmp)
        for name, flags in TRAIN:
            rows.append(train_row(name, flags, size, model_dir, peak))
            print(f"gpu_check: {name}: {rows[-1]['status']}", file=sys.stderr, flush=True)
        rows += generate_rows(model_dir, size["prompts"], gpu)
        rows.append(pytest_row(gpu))
    print(f"gpu_check on {device} ({'dry run, ' if args.dry_run else ''}{size}), {time.perf_counter() - start:.0f} s:")
    print(table(rows))
    if any(r["status"] == "FAILED" for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
