"""DVC stage `report`: metrics/*.json, the training log, outputs/*, test prompts, dvc.lock -> reports/index.html and
reports/model_card.md.

One self-contained page (no script, no URL; charts drawn to inline SVG here): the headline win / tie / loss with
what each number depends on, LIMA-style charts, how reliable the judge measured itself to be, the ablation curve,
the clearest answers side by side, the curation funnel, the training curves and checkpoint choice, and the lineage,
stage timings and judge cost. Every input but params is optional: a missing one makes its section say "not run".
reports/model_card.md is models/finetuned/README.md (the train stage's card) with the test results as a model-index:
the README to upload with models/finetuned.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from lessismore import contract as c
from lessismore import records
from lessismore.cards import with_eval
from lessismore.config import load_params
from lessismore.errors import run_stage
from lessismore.lineage import git_commit, lineage_table, stage_lineage
from lessismore.report.build import STAGES, build_report
from lessismore.report.sections import per_system, with_timings
from lessismore.train.steplog import read_steps


def read_json(path: Path, notes: list[str]) -> dict:
    """A metrics file as a dict; {} when missing, and a note (not a crash) when it is not a JSON object."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        notes.append(f"{path}: not valid JSON ({err}); re-run the stage that writes it")
        return {}
    if not isinstance(data, dict):
        notes.append(f"{path}: expected a JSON object, found {type(data).__name__}; re-run the stage that writes it")
        return {}
    return data


def systems(judge: dict) -> list[str]:
    """The systems the judge compared (its candidate and baselines), or, before it ran, every one that answered."""
    if judge.get("candidate"):
        return [judge["candidate"], *judge.get("baselines", {})]
    return sorted(p.stem for p in c.ANSWERS.glob("*.json"))


def main() -> None:
    # ---------------------------------------------------------------- params and inputs (each one optional)
    started = time.perf_counter()
    params = load_params(stage="report")
    notes: list[str] = []
    results = {stage: read_json(c.metrics(stage), notes) for stage in STAGES if stage != "generate"}
    timings = {stage: read_json(c.timing(stage), notes) for stage in c.TIMED if stage != "generate"}
    judged = systems(results["judge"])  # the files of a system no longer in params may linger: not this run's
    answers = {name: read_json(c.metrics("generate", name), notes) for name in judged}
    results["generate"], timings["generate"] = per_system(
        {k: v for k, v in answers.items() if v},
        {name: read_json(c.timing("generate", name), notes) for name in judged},
    )
    stage_metrics = with_timings(results, timings)
    judge = stage_metrics["judge"]
    primary = judge.get("primary") or judge.get("judge")  # the side-by-side answers show the headline judge's verdicts
    judgments = [j for j in records.read_jsonl(c.JUDGMENTS, records.Judgment) if j.judge == primary] if judge else []
    files = [c.response_file(name) for name in judged]
    responses = [r for p in files if p.exists() for r in records.read_jsonl(p, records.Response)]
    prompts_file = c.VALIDATED / c.PROMPTS
    tests = records.read_parquet(prompts_file, records.Prompt) if prompts_file.exists() else []
    prompts = [p for p in tests if p.split == "test"]
    steps, step_problems = read_steps(c.TRAIN_LOG, c.TRAIN_PERF)
    lineage = lineage_table(stage_lineage(c.LOCK), git_commit("."))

    # ---------------------------------------------------------------- build and write
    html = build_report(
        title=params.report.title,
        experiment=params.base.experiment,
        judge_metrics=judge,
        stage_metrics=stage_metrics,
        judgments=judgments,
        responses=responses,
        prompts=prompts,
        lineage=lineage,
        train_steps=steps,
        ablation=read_json(c.ABLATION, notes),
        notes=notes + step_problems,
    )
    c.REPORT.parent.mkdir(parents=True, exist_ok=True)
    c.REPORT.write_text(html, encoding="utf-8")
    if c.MODEL_CARD.exists():
        card = with_eval(c.MODEL_CARD.read_text(encoding="utf-8"), results["judge"])
        c.PUBLISHED_CARD.write_text(card, encoding="utf-8")
    missing = [stage for stage in STAGES if not stage_metrics[stage]]
    not_run = f" (not run: {', '.join(missing)})" if missing else ""
    print(f"report: {len(html) / 1024:.0f} KiB in {time.perf_counter() - started:.1f} s -> {c.REPORT}{not_run}")


if __name__ == "__main__":
    run_stage("report", main)
