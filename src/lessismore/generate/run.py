"""The generate stage's work, from params' generate section: every model answers the test prompts (resumable), every
baseline file is imported, and one metrics dict describes it all (metrics/generate.json).

`open_backend` is the one place a Generate spec becomes a backend; the stage script only reads inputs, calls
`answer_all` and `import_all`, and writes what they return.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lessismore import records
from lessismore.generate import GenerateBackend
from lessismore.generate.baselines import import_baseline
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


def answer_all(
    spec: Generate, prompts: list[records.Prompt], model_dirs: dict[str, Path], out_dir: Path, seed: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every model of spec.models answers `prompts` into out_dir/<model>.jsonl (resumably); returns the metrics and
    the timing: per model the seconds and tokens/s (the machine's) and what this run did (answers resumed from the
    store, generated, found stale; tokens generated), which depends on earlier runs, not on the answers."""
    decoding = decoding_of(spec, seed)
    metrics: dict[str, Any] = {"counts": {"responses": 0}, "prompts": len(prompts), "decoding": decoding}
    metrics["backend"] = spec.backend
    per_model: dict[str, dict[str, Any]] = {}
    for name in spec.models:
        model_dir = model_dirs[name]
        checkpoint = checkpoint_hash(model_dir)
        path = out_dir / f"{name}.jsonl"
        run = run_resumable(
            lambda d=model_dir: open_backend(spec, d, seed),
            prompts,
            path,
            model=name,
            checkpoint=checkpoint,
            decoding=decoding,
        )
        reasons = dict(Counter(r.meta.get("finish_reason") for r in run.responses))
        metrics["counts"][name] = len(run.responses)
        metrics["counts"]["responses"] += len(run.responses)
        per_model[name] = {
            "checkpoint": checkpoint,
            "new_tokens": run.new_tokens,
            "tokens_per_s": round(run.new_tokens / run.seconds, 1) if run.seconds else 0.0,
            "seconds": round(run.seconds, 1),
            "finish_reasons": reasons,
            "resumed": run.resumed,
            "generated": run.generated,
            "stale": run.stale,
        }
        print(
            f"generate: {name} {len(run.responses)} answers ({run.resumed} resumed, {run.generated} generated), "
            f"{run.new_tokens} tokens in {run.seconds:.1f} s, finish {reasons}"
        )
    metrics["checkpoints"] = {name: m["checkpoint"] for name, m in per_model.items()}
    metrics["finish_reasons"] = {name: m["finish_reasons"] for name, m in per_model.items()}
    run_keys = ("seconds", "tokens_per_s", "new_tokens", "resumed", "generated", "stale")
    timing = {key: {name: m[key] for name, m in per_model.items()} for key in run_keys}
    return metrics, timing


def import_all(
    spec: Generate, prompts: list[records.Prompt], out_dir: Path, metrics: dict[str, Any]
) -> list[records.Dropped]:
    """Each baseline file becomes out_dir/<name>.jsonl, matched to `prompts`; adds its counts to `metrics` and
    returns the rows that carry no usable answer (the quarantine)."""
    dropped: list[records.Dropped] = []
    metrics["baselines"] = {}
    for b in spec.baselines:
        imp = import_baseline(b.name, b.format, b.path, prompts)
        (out_dir / f"{b.name}.jsonl").unlink(missing_ok=True)
        records.write_jsonl(out_dir / f"{b.name}.jsonl", imp.responses)
        for p in imp.unmatched:
            print(
                f"generate: WARNING baseline {b.name!r} has no answer to test prompt {p.id} "
                f"({p.origin.file} row {p.origin.row}): {p.text[:80]!r}"
            )
        for why in imp.ambiguous:
            print(f"generate: WARNING baseline {b.name!r} {b.path} {why}: not paired with any prompt")
        dropped += imp.dropped
        metrics["counts"][b.name] = len(imp.responses)
        metrics["counts"]["responses"] += len(imp.responses)
        metrics["checkpoints"][b.name] = imp.checkpoint
        counts = {
            "matched": len(imp.responses),
            "unmatched": len(imp.unmatched),
            "extra": imp.extra,
            "duplicates": imp.duplicates,
            "ambiguous": len(imp.ambiguous),
            "dropped": len(imp.dropped),
        }
        metrics["baselines"][b.name] = {"format": b.format, **counts}
        print(
            f"generate: baseline {b.name}: {counts['matched']} matched, {counts['unmatched']} test prompts "
            f"unanswered, {imp.extra} answers to other prompts ignored, {counts['dropped']} rows dropped"
        )
    metrics["dropped"] = len(dropped)
    return dropped
