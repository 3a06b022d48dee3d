"""The work of the stages that give the judge its answers: generate@<model> (one model of generate.models answers
the test prompts, resumably) and import@<name> (one published file of generate.baselines is matched to them). Each
describes its system in one metrics dict (metrics/generate/<system>.json), whichever stage made it.

`open_backend` is the one place a Generate spec becomes a backend; the stage scripts only read inputs, call
`answer_one` (here) or `baselines.import_one`, and write what they return.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lessismore import records
from lessismore.generate import GenerateBackend
from lessismore.generate.store import run_resumable
from lessismore.models import checkpoint_hash

if TYPE_CHECKING:
    from lessismore.config import Generate


def decoding_of(spec: Generate, seed: int) -> dict[str, Any]:
    """What a response id hashes besides model, checkpoint and prompt: LIMA's decoding, the seed, and the backend
    when it is not transformers (another sampler draws other texts from the same seed)."""
    decoding = {
        "top_p": spec.top_p,
        "temperature": spec.temperature,
        "repetition_penalty": spec.repetition_penalty,
        "max_new_tokens": spec.max_new_tokens,
        "seed": seed,
    }
    return decoding | ({"backend": spec.backend} if spec.backend != "transformers" else {})


def open_backend(spec: Generate, model_dir: Path, seed: int) -> GenerateBackend:
    """The configured backend for one checkpoint; only built when something is left to generate."""
    lima = {
        "max_new_tokens": spec.max_new_tokens,
        "top_p": spec.top_p,
        "temperature": spec.temperature,
        "repetition_penalty": spec.repetition_penalty,
        "seed": seed,
    }
    if spec.backend == "openai":
        from lessismore.generate.openai_backend import OpenAIBackend

        o = spec.openai
        served = o.model or str(model_dir.resolve())  # `transformers serve` / `vllm serve <dir>` name it by its path
        endpoint = {"api_key_env": o.api_key_env, "concurrency": o.concurrency, "timeout_s": o.timeout_s}
        retries = {"max_retries": o.max_retries, "penalty": o.repetition_penalty_as}
        return OpenAIBackend(o.base_url, served, **endpoint, **retries, progress=True, **lima)
    if spec.backend == "vllm":
        from lessismore.generate.vllm_backend import VLLMBackend

        return VLLMBackend(model_dir, batch_size=spec.batch_size, **lima)
    from lessismore.generate.transformers_backend import TransformersBackend
    from lessismore.models import load_causal_lm

    model, tokenizer = load_causal_lm(model_dir)
    return TransformersBackend(model, tokenizer, batch_size=spec.batch_size, progress=True, **lima)


def answer_one(
    spec: Generate, prompts: list[records.Prompt], name: str, model_dir: Path, out: Path, seed: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Model `name` (its weights in model_dir) answers `prompts` into `out` (resumably); returns the metrics (what
    was answered, how it ended) and the timing: the seconds and tokens/s (the machine's) and what this run did
    (answers resumed from the store, generated, found stale; tokens generated), which depends on earlier runs, not
    on the answers."""
    decoding = decoding_of(spec, seed)
    checkpoint = checkpoint_hash(model_dir)
    run = run_resumable(
        lambda: open_backend(spec, model_dir, seed), prompts, out, model=name, checkpoint=checkpoint, decoding=decoding
    )
    reasons = dict(Counter(r.meta.get("finish_reason") for r in run.responses))
    metrics = {
        "system": name,
        "kind": "generated",
        "responses": len(run.responses),
        "prompts": len(prompts),
        "checkpoint": checkpoint,
        "backend": spec.backend,
        "decoding": decoding,
        "finish_reasons": reasons,
    }
    timing = {
        "seconds": round(run.seconds, 1),
        "tokens_per_s": round(run.new_tokens / run.seconds, 1) if run.seconds else 0.0,
        "new_tokens": run.new_tokens,
        "resumed": run.resumed,
        "generated": run.generated,
        "stale": run.stale,
    }
    print(
        f"generate: {name} {len(run.responses)} answers ({run.resumed} resumed, {run.generated} generated), "
        f"{run.new_tokens} tokens in {run.seconds:.1f} s, finish {reasons}"
    )
    return metrics, timing
