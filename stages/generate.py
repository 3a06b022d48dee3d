"""DVC stage `generate`: the test prompts + models/final/ + models/base/ -> outputs/responses/<model>.jsonl.

Every model in params generate.models answers every test prompt with LIMA's decoding (nucleus sampling, seeded per
batch). Each records.Response carries the checkpoint hash and decoding settings, so its id names what produced it.
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from pathlib import Path

from lessismore import records
from lessismore.config import load_params
from lessismore.generate.loading import checkpoint_hash, load_causal_lm
from lessismore.generate.transformers_backend import TransformersBackend

PROMPTS = Path("data/validated/prompts.parquet")
MODEL_DIRS = {"finetuned": Path("models/final"), "base": Path("models/base")}
OUT_DIR = Path("outputs/responses")
METRICS = Path("metrics/generate.json")


def main() -> None:
    # ---------------------------------------------------------------- params and inputs
    params = load_params()
    g = params.generate
    prompts = [p for p in records.read_parquet(PROMPTS, records.Prompt) if p.split == "test"]
    if not prompts:
        raise SystemExit(f"{PROMPTS}: no prompts with split 'test'; check the test source in params ingest.sources")
    decoding = {"top_p": g.top_p, "temperature": g.temperature, "repetition_penalty": g.repetition_penalty,
                "max_new_tokens": g.max_new_tokens, "seed": params.base.seed}  # fmt: skip
    shutil.rmtree(OUT_DIR, ignore_errors=True)  # this stage owns the folder: no answers from a dropped model remain

    # ---------------------------------------------------------------- generate, one model at a time
    metrics = {"counts": {"responses": 0}, "prompts": len(prompts), "decoding": decoding, "checkpoints": {},
               "tokens_per_s": {}, "seconds": {}, "finish_reasons": {}, "new_tokens": {}}  # fmt: skip
    for name in g.models:
        model_dir = MODEL_DIRS[name]
        model, tokenizer = load_causal_lm(model_dir)
        backend = TransformersBackend(
            model, tokenizer, max_new_tokens=g.max_new_tokens, top_p=g.top_p, temperature=g.temperature,
            repetition_penalty=g.repetition_penalty, seed=params.base.seed, batch_size=g.batch_size, progress=True,
        )  # fmt: skip
        start = time.perf_counter()
        results = backend.generate([p.text for p in prompts])
        seconds = time.perf_counter() - start
        checkpoint = checkpoint_hash(model_dir)
        responses = [
            records.Response(prompt_id=p.id, model=name, checkpoint=checkpoint, text=r.text, decoding=decoding,
                             meta={"new_tokens": r.new_tokens, "finish_reason": r.finish_reason})
            for p, r in zip(prompts, results, strict=True)
        ]  # fmt: skip
        records.write_jsonl(OUT_DIR / f"{name}.jsonl", responses)

        # ------------------------------------------------------------ per-model metrics
        new_tokens = sum(r.new_tokens for r in results)
        metrics["counts"][name] = len(responses)
        metrics["counts"]["responses"] += len(responses)
        metrics["checkpoints"][name] = checkpoint
        metrics["new_tokens"][name] = new_tokens
        metrics["tokens_per_s"][name] = round(new_tokens / seconds, 1)
        metrics["seconds"][name] = round(seconds, 1)
        metrics["finish_reasons"][name] = dict(Counter(r.finish_reason for r in results))
        print(f"generate: {name} {len(responses)} answers, {new_tokens} tokens in {seconds:.1f} s, "
              f"finish {metrics['finish_reasons'][name]}")  # fmt: skip
        del model, backend

    records.write_json(METRICS, metrics)


if __name__ == "__main__":
    main()
