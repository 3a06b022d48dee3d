"""DVC stage `judge`: outputs/responses/*.jsonl + test prompts -> outputs/judgments.jsonl, outputs/ratings.jsonl,
metrics/judge.json.

A local model judges the candidate against each baseline on every test prompt, in both orders (LIMA's pairwise
question), and grades every answer excellent / pass / fail (LIMA Figure 3). The metrics hold the win / tie / loss
shares with bootstrap intervals and the judge's own reliability numbers, which the report states plainly.
"""

from __future__ import annotations

import time
from pathlib import Path

from tqdm import tqdm

from lessismore import records
from lessismore.config import load_params
from lessismore.generate.loading import checkpoint_hash, load_causal_lm
from lessismore.judge import load_template
from lessismore.judge.local import LocalBackend
from lessismore.judge.protocol import build_pairs, judge_pairs, pair_outcomes, rate_responses
from lessismore.judge.stats import grade_shares, per_baseline, reliability

PROMPTS = Path("data/validated/prompts.parquet")
RESPONSES = Path("outputs/responses")
JUDGE_MODELS = {"base": Path("models/base"), "finetuned": Path("models/final")}
JUDGMENTS = Path("outputs/judgments.jsonl")
RATINGS = Path("outputs/ratings.jsonl")
METRICS = Path("metrics/judge.json")
ABSOLUTE_TEMPLATE = "absolute"  # prompts/absolute.txt: LIMA Figure 3's excellent / pass / fail question


def read_responses(models: list[str]) -> list[records.Response]:
    out = []
    for model in models:
        path = RESPONSES / f"{model}.jsonl"
        if not path.exists():
            raise SystemExit(f"{path} not found: add {model!r} to params generate.models and run `dvc repro generate`")
        out += records.read_jsonl(path, records.Response)
    return out


def main() -> None:
    # ---------------------------------------------------------------- params and inputs
    params = load_params()
    j = params.judge
    if not PROMPTS.exists():
        raise SystemExit(f"{PROMPTS} not found: run `dvc repro validate` first")
    prompts = {p.id: p for p in records.read_parquet(PROMPTS, records.Prompt) if p.split == "test"}
    responses = read_responses([j.candidate, *j.baselines])
    tested = [r for r in responses if r.prompt_id in prompts]  # answers to anything else are not this stage's test
    judge_dir = JUDGE_MODELS[j.model]
    model, tokenizer = load_causal_lm(judge_dir, device="auto")
    backend = LocalBackend(model, tokenizer, mode=j.mode, max_new_tokens=j.max_new_tokens)
    pairwise, absolute = load_template(j.template), load_template(ABSOLUTE_TEMPLATE)
    started = time.perf_counter()

    # ---------------------------------------------------------------- pairwise, both orders
    pairs, unpaired = build_pairs(prompts.values(), tested, j.candidate, j.baselines)
    with tqdm(total=2 * len(pairs), desc="judge: pairwise", unit="verdict") as bar:
        judgments = judge_pairs(pairs, backend, pairwise, j.name, j.batch_size, progress=bar.update)

    # ---------------------------------------------------------------- absolute grades
    items = [(prompts[r.prompt_id], r) for r in sorted(tested, key=lambda r: (r.model, r.prompt_id))]
    with tqdm(total=len(items), desc="judge: grades", unit="answer") as bar:
        ratings = rate_responses(items, backend, absolute, j.name, j.batch_size, progress=bar.update)
    seconds = time.perf_counter() - started

    # ---------------------------------------------------------------- statistics
    outcomes = pair_outcomes(judgments, j.candidate, {r.id: len(r.text) for r in tested})
    metrics = {
        "judge": j.name, "mode": j.mode, "candidate": j.candidate, "judge_model": j.model,
        "judge_checkpoint": checkpoint_hash(judge_dir), "template": pairwise.sha, "absolute_template": absolute.sha,
        "counts": {"judgments": len(judgments), "pairs": len(outcomes), "ratings": len(ratings)},
        "unpaired": unpaired, "not_test_responses": len(responses) - len(tested),
        "truncated": sum(x.meta.get("truncated", False) for x in [*judgments, *ratings]),
        "baselines": per_baseline(outcomes, j.baselines, n_resamples=1000, seed=params.base.seed),
        "reliability": reliability(outcomes, judgments),
        "grades": grade_shares(ratings),
        "seconds": round(seconds, 1),
    }  # fmt: skip

    # ---------------------------------------------------------------- write
    records.write_jsonl(JUDGMENTS, judgments)
    records.write_jsonl(RATINGS, ratings)
    records.write_json(METRICS, metrics)
    for name, b in metrics["baselines"].items():
        print(f"judge: {j.candidate} vs {name}: {b['counts']} over {b['n']} pairs ({b['invalid']} invalid)")
    print(f"judge: {len(judgments)} verdicts + {len(ratings)} grades in {seconds:.1f} s -> {JUDGMENTS}, {RATINGS}")


if __name__ == "__main__":
    main()
