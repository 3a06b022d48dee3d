"""DVC stage `report`: metrics/*.json, logs/train_steps.csv, outputs/*, test prompts, dvc.lock -> reports/index.html.

One self-contained page (no script, no URL; charts drawn to inline SVG here): the headline win / tie / loss with
what each number depends on, LIMA-style charts, how reliable the judge measured itself to be, the ablation curve,
the clearest answers side by side, the curation funnel, the training curves and checkpoint choice, and the lineage,
stage timings and judge cost. Every input but params is optional: a missing one makes its section say "not run".
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from lessismore import records
from lessismore.config import load_params
from lessismore.lineage import git_commit, lineage_table, stage_lineage
from lessismore.report.build import STAGES, build_report
from lessismore.report.sections import read_step_log

METRICS = Path("metrics")
ABLATION = METRICS / "ablation.json"
STEP_LOG = Path("logs/train_steps.csv")
JUDGMENTS = Path("outputs/judgments.jsonl")
RESPONSES = Path("outputs/responses")
PROMPTS = Path("data/validated/prompts.parquet")
LOCK = Path("dvc.lock")
OUT = Path("reports/index.html")


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


def main() -> None:
    # ---------------------------------------------------------------- params and inputs (each one optional)
    started = time.perf_counter()
    params = load_params()
    notes: list[str] = []
    stage_metrics = {stage: read_json(METRICS / f"{stage}.json", notes) for stage in STAGES}
    judge = stage_metrics["judge"]
    primary = judge.get("primary") or judge.get("judge")  # the side-by-side answers show the headline judge's verdicts
    judgments = [j for j in records.read_jsonl(JUDGMENTS, records.Judgment) if j.judge == primary] if judge else []
    responses = [r for path in sorted(RESPONSES.glob("*.jsonl")) for r in records.read_jsonl(path, records.Response)]
    prompts = (
        [p for p in records.read_parquet(PROMPTS, records.Prompt) if p.split == "test"] if PROMPTS.exists() else []
    )
    steps, step_problems = read_step_log(STEP_LOG)
    lineage = lineage_table(stage_lineage(LOCK), git_commit("."))

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
        ablation=read_json(ABLATION, notes),
        notes=notes + step_problems,
    )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(html, encoding="utf-8")
    missing = [stage for stage in STAGES if not stage_metrics[stage]]
    print(
        f"report: {len(html) / 1024:.0f} KiB in {time.perf_counter() - started:.1f} s -> {OUT}"
        + (f" (not run: {', '.join(missing)})" if missing else "")
    )


if __name__ == "__main__":
    main()
