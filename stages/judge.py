"""DVC stage `judge`: outputs/responses/*.jsonl + test prompts -> outputs/judgments.jsonl, outputs/ratings.jsonl,
outputs/injection.jsonl, metrics/judge.json (and the persistent verdict cache outputs/judge_cache.jsonl); also reads
outputs/human_judgments.jsonl.

Every judge in params judge.judges compares the candidate with each baseline on every test prompt in both orders
(LIMA's pairwise question), grades every answer excellent / pass / fail (LIMA Figure 3), and judges the planted
verdict-injection twins. Every call goes through the verdict cache: a re-run asks only what it has never asked, and
a killed run loses nothing already judged. The metrics hold, per judge, win / tie / loss with bootstrap intervals,
Bradley-Terry ratings, the judge's own reliability, the injection result and its cost; between judges, agreement.
The primary judge's numbers are also at the top level: they are the headline. When people have judged (the export of
`lessismore annotate`), "humans" holds their win / tie / loss and grades with CIs and their agreement with each other
and with every judge.
"""

from __future__ import annotations

import time
from pathlib import Path

from lessismore import records
from lessismore.config import load_params
from lessismore.judge import load_template
from lessismore.judge.cache import VerdictCache
from lessismore.judge.factory import open_judge
from lessismore.judge.injection import plant
from lessismore.judge.protocol import RunStats, build_pairs, judge_pairs, rate_responses
from lessismore.judge.summary import agreement_between, human_summary, judge_labels, judge_summary

PROMPTS = Path("data/validated/prompts.parquet")
RESPONSES = Path("outputs/responses")
MODEL_DIRS = {"base": Path("models/base"), "finetuned": Path("models/final")}
JUDGMENTS = Path("outputs/judgments.jsonl")
RATINGS = Path("outputs/ratings.jsonl")
INJECTION = Path("outputs/injection.jsonl")
CACHE = Path("outputs/judge_cache.jsonl")
HUMANS = Path("outputs/human_judgments.jsonl")  # `lessismore annotate --export`; committed empty until people judge
METRICS = Path("metrics/judge.json")


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
    pairs, unpaired = build_pairs(prompts.values(), tested, j.candidate, j.baselines)
    planted = plant(pairs, j.injection.pairs, seed=params.base.seed)
    items = [(prompts[r.prompt_id], r) for r in sorted(tested, key=lambda r: (r.model, r.prompt_id))]
    primary = j.primary or j.judges[0].name
    started = time.perf_counter()

    # ---------------------------------------------------------------- every judge: pairs, injection twins, grades
    judgments, ratings, injected, blocks = [], [], [], {}
    with VerdictCache(CACHE) as cache:
        unreadable = cache.unreadable
        for i, spec in enumerate(j.judges):
            backend, run = open_judge(spec, MODEL_DIRS, params.base.seed, section=f"judge.judges[{i}]")
            pairwise = load_template(spec.template)
            mine, cost = judge_pairs(pairs, backend, pairwise, run, cache, desc=f"judge {spec.name}: pairs")
            twins, c2 = judge_pairs(
                [t for _, t, _ in planted], backend, pairwise, run, cache, desc=f"judge {spec.name}: injection"
            )
            grades, c3 = [], RunStats()
            if spec.absolute_template:
                absolute = load_template(spec.absolute_template)
                grades, c3 = rate_responses(items, backend, absolute, run, cache, desc=f"judge {spec.name}: grades")
            blocks[spec.name] = judge_summary(
                mine,
                grades,
                twins,
                [name for _, _, name in planted],
                candidate=j.candidate,
                baselines=j.baselines,
                lengths={r.id: len(r.text) for r in tested},
                n_resamples=j.bootstrap,
                base_seed=params.base.seed,
            )
            blocks[spec.name].update(
                backend=spec.backend,
                model=spec.model,
                mode=spec.mode,
                calibrate=spec.calibrate,
                fingerprint=run.fingerprint,
                template=pairwise.sha,
                cost=(cost + c2 + c3).as_dict(),
            )
            judgments += mine
            ratings += grades
            injected += twins
        cache_rows = len(cache)
    seconds = time.perf_counter() - started

    # ---------------------------------------------------------------- statistics: the primary judge is the headline
    head = blocks[primary]
    metrics = {
        "candidate": j.candidate,
        "primary": primary,
        "baselines": head["baselines"],
        "ratings": head["ratings"],
        "reliability": head["reliability"],
        "grades": head["grades"],
        "injection": head["injection"],
        "judges": blocks,
        "agreement": agreement_between(judgments, j.candidate),
        "counts": {
            "judgments": len(judgments),
            "pairs": len(pairs),
            "ratings": len(ratings),
            "injected": len(injected),
            "judges": len(blocks),
        },
        "unpaired": unpaired,
        "not_test_responses": len(responses) - len(tested),
        "truncated": sum(bool(x.meta.get("truncated")) for x in [*judgments, *ratings]),
        "cache": {"rows": cache_rows, "unreadable_lines": unreadable},
        "humans": human_summary(
            list(records.iter_jsonl(HUMANS)),
            judge_labels(judgments, j.candidate),
            baselines=j.baselines,
            n_resamples=j.bootstrap,
            base_seed=params.base.seed,
        )
        if HUMANS.exists() and HUMANS.stat().st_size
        else None,
        "seconds": round(seconds, 1),
    }

    # ---------------------------------------------------------------- write
    records.write_jsonl(JUDGMENTS, judgments)
    records.write_jsonl(RATINGS, ratings)
    records.write_jsonl(INJECTION, injected)
    records.write_json(METRICS, metrics)
    for name, block in blocks.items():
        cost = block["cost"]
        for base, b in block["baselines"].items():
            print(f"judge {name}: {j.candidate} vs {base}: {b['counts']} over {b['n']} pairs ({b['invalid']} invalid)")
        print(f"judge {name}: {cost['calls']} calls, {cost['cached']} from the cache, ${cost['cost_usd']:.4f}")
    print(f"judge: {len(judgments)} verdicts + {len(ratings)} grades in {seconds:.1f} s -> {JUDGMENTS}, {RATINGS}")


if __name__ == "__main__":
    main()
