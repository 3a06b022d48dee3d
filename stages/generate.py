"""DVC stage `generate`: the test prompts + models/final/ + models/base/ (+ baseline files) -> outputs/responses/.

Every model in params generate.models answers every test prompt with LIMA's decoding through the configured backend
(transformers, an OpenAI-compatible server, or vLLM). Generation is resumable: outputs/responses is a persistent DVC
out, each batch is appended as it finishes, and a re-run generates only the answers whose content id (model,
checkpoint hash, prompt, decoding) is missing; answers from another checkpoint or decoding are dropped as stale.
Each configured baseline file is imported as outputs/responses/<name>.jsonl, its unmatched prompts listed.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from lessismore import records
from lessismore.config import Generate, load_params
from lessismore.generate import GenerateBackend
from lessismore.generate.baselines import import_baseline
from lessismore.generate.loading import checkpoint_hash
from lessismore.generate.store import run_resumable

PROMPTS = Path("data/validated/prompts.parquet")
MODEL_DIRS = {"finetuned": Path("models/final"), "base": Path("models/base")}
OUT_DIR = Path("outputs/responses")
QUARANTINE = Path("data/quarantine/generate.jsonl")
METRICS = Path("metrics/generate.json")


def make_backend(g: Generate, model_dir: Path, seed: int) -> GenerateBackend:
    """The configured backend for one checkpoint; only built when something is left to generate."""
    lima = dict(
        max_new_tokens=g.max_new_tokens,
        top_p=g.top_p,
        temperature=g.temperature,
        repetition_penalty=g.repetition_penalty,
        seed=seed,
    )
    if g.backend == "openai":
        from lessismore.generate.openai_backend import OpenAIBackend

        o = g.openai
        served = o.model or str(model_dir.resolve())  # `transformers serve` / `vllm serve <dir>` name it by its path
        return OpenAIBackend(
            o.base_url,
            served,
            api_key_env=o.api_key_env,
            concurrency=o.concurrency,
            timeout_s=o.timeout_s,
            max_retries=o.max_retries,
            penalty=o.repetition_penalty_as,
            progress=True,
            **lima,
        )
    if g.backend == "vllm":
        from lessismore.generate.vllm_backend import VLLMBackend

        return VLLMBackend(model_dir, batch_size=g.batch_size, **lima)
    from lessismore.generate.loading import load_causal_lm
    from lessismore.generate.transformers_backend import TransformersBackend

    model, tokenizer = load_causal_lm(model_dir)
    return TransformersBackend(model, tokenizer, batch_size=g.batch_size, progress=True, **lima)


def main() -> None:
    # ---------------------------------------------------------------- params and inputs
    params = load_params()
    g = params.generate
    prompts = [p for p in records.read_parquet(PROMPTS, records.Prompt) if p.split == "test"]
    if not prompts:
        raise SystemExit(f"{PROMPTS}: no prompts with split 'test'; check the test source in params ingest.sources")
    decoding = {
        "top_p": g.top_p,
        "temperature": g.temperature,
        "repetition_penalty": g.repetition_penalty,
        "max_new_tokens": g.max_new_tokens,
        "seed": params.base.seed,
    }
    if g.backend != "transformers":  # another sampler draws other texts from the same seed: a different answer
        decoding["backend"] = g.backend
    names = [*g.models, *(b.name for b in g.baselines)]
    for old in OUT_DIR.glob("*.jsonl"):  # the folder persists between runs: no answers from a dropped model remain
        if old.stem not in names:
            old.unlink()

    # ---------------------------------------------------------------- generate, one model at a time (resumable)
    metrics = {
        "counts": {"responses": 0},
        "prompts": len(prompts),
        "decoding": decoding,
        "checkpoints": {},
        "tokens_per_s": {},
        "seconds": {},
        "finish_reasons": {},
        "new_tokens": {},
        "resumed": {},
        "generated": {},
        "stale": {},
        "backend": g.backend,
    }
    for name in g.models:
        model_dir = MODEL_DIRS[name]
        checkpoint = checkpoint_hash(model_dir)
        run = run_resumable(
            lambda d=model_dir: make_backend(g, d, params.base.seed),
            prompts,
            OUT_DIR / f"{name}.jsonl",
            model=name,
            checkpoint=checkpoint,
            decoding=decoding,
        )
        reasons = Counter(r.meta.get("finish_reason") for r in run.responses)
        metrics["counts"][name] = len(run.responses)
        metrics["counts"]["responses"] += len(run.responses)
        metrics["checkpoints"][name] = checkpoint
        metrics["new_tokens"][name] = run.new_tokens
        metrics["tokens_per_s"][name] = round(run.new_tokens / run.seconds, 1) if run.seconds else 0.0
        metrics["seconds"][name] = round(run.seconds, 1)
        metrics["finish_reasons"][name] = dict(reasons)
        metrics["resumed"][name], metrics["generated"][name] = run.resumed, run.generated
        metrics["stale"][name] = run.stale
        print(
            f"generate: {name} {len(run.responses)} answers ({run.resumed} resumed, {run.generated} generated), "
            f"{run.new_tokens} tokens in {run.seconds:.1f} s, finish {dict(reasons)}"
        )

    # ---------------------------------------------------------------- baselines: published answers, matched
    dropped: list[records.Dropped] = []
    metrics["baselines"] = {}
    for b in g.baselines:
        imp = import_baseline(b.name, b.format, b.path, prompts)
        (OUT_DIR / f"{b.name}.jsonl").unlink(missing_ok=True)
        records.write_jsonl(OUT_DIR / f"{b.name}.jsonl", imp.responses)
        for p in imp.unmatched:
            print(
                f"generate: WARNING baseline {b.name!r} has no answer to test prompt {p.id} "
                f"({p.origin.file} row {p.origin.row}): {p.text[:80]!r}"
            )
        dropped += imp.dropped
        metrics["counts"][b.name] = len(imp.responses)
        metrics["counts"]["responses"] += len(imp.responses)
        metrics["checkpoints"][b.name] = imp.checkpoint
        counts = {
            "matched": len(imp.responses),
            "unmatched": len(imp.unmatched),
            "extra": imp.extra,
            "duplicates": imp.duplicates,
            "dropped": len(imp.dropped),
        }
        metrics["baselines"][b.name] = {"format": b.format, **counts}
        print(
            f"generate: baseline {b.name}: {counts['matched']} matched, {counts['unmatched']} test prompts "
            f"unanswered, {imp.extra} answers to other prompts ignored, {counts['dropped']} rows dropped"
        )

    records.write_jsonl(QUARANTINE, dropped)
    metrics["dropped"] = len(dropped)
    records.write_json(METRICS, metrics)


if __name__ == "__main__":
    main()
