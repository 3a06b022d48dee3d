"""DVC stage `judge`: outputs/responses/*.jsonl + test prompts -> outputs/judgments.jsonl, outputs/ratings.jsonl,
outputs/injection.jsonl, metrics/judge.json (and the persistent verdict cache outputs/judge_cache.jsonl); also reads
outputs/human_judgments.jsonl.

Every judge in params judge.judges compares the candidate with each baseline on every test prompt (or the subset
eval.prompts names) in both orders (LIMA's pairwise question), grades every answer excellent / pass / fail (LIMA
Figure 3), and judges the planted verdict-injection twins. Every call goes through the verdict cache: a re-run asks
only what it has never asked, and a killed run loses nothing already judged. The metrics hold, per judge, win / tie
/ loss with bootstrap intervals, Bradley-Terry ratings, the judge's own reliability, the injection result and its
cost; between judges, agreement. The primary judge's numbers are also at the top level: they are the headline. When
people have judged (the export of `lessismore annotate`), "humans" holds their win / tie / loss and grades with CIs
and their agreement with each other and with every judge.
"""

from __future__ import annotations

from lessismore import contract as c
from lessismore import records
from lessismore.config import load_params
from lessismore.errors import NotFound, run_stage
from lessismore.evalset import choose_prompts, read_test_prompts
from lessismore.judge.run import judge_all, print_summary


def read_responses(models: list[str]) -> list[records.Response]:
    out = []
    for model in models:
        path = c.response_file(model)
        if not path.exists():
            raise NotFound(
                f"{path} not found: add {model!r} to params generate.models (or generate.baselines) and run "
                f"`dvc repro judge`, which runs generate@{model} (or import@{model}) first"
            )
        out += records.read_jsonl(path, records.Response)
    return out


def main() -> None:
    # ---------------------------------------------------------------- params and inputs
    params = load_params(stage="judge")
    j = params.judge
    test = read_test_prompts(c.VALIDATED / c.PROMPTS)
    prompts = {p.id: p for p in choose_prompts(test, params.eval.prompts)}  # the prompts generate answered
    responses = read_responses([j.candidate, *j.baselines])
    humans = list(records.iter_jsonl(c.HUMAN_JUDGMENTS)) if c.HUMAN_JUDGMENTS.exists() else []

    # ---------------------------------------------------------------- every judge, through the verdict cache
    out = judge_all(
        j,
        prompts,
        responses,
        model_dirs={"base": c.BASE_MODEL},  # never the model in training (configcheck): a judge stays put
        cache_path=c.JUDGE_CACHE,
        humans=humans,
        seed=params.base.seed,
    )

    # ---------------------------------------------------------------- write
    records.write_jsonl(c.JUDGMENTS, out.judgments)
    records.write_jsonl(c.RATINGS, out.ratings)
    records.write_jsonl(c.INJECTION, out.injected)
    records.write_json(c.metrics("judge"), out.metrics)
    records.write_json(c.timing("judge"), out.timing)
    print_summary(out.metrics, out.timing)
    n = f"{len(out.judgments)} verdicts + {len(out.ratings)} grades in {out.timing['seconds']:.1f} s"
    print(f"judge: {n} -> {c.JUDGMENTS}, {c.RATINGS}")


if __name__ == "__main__":
    run_stage("judge", main)
