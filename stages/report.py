"""DVC stage `report`: metrics/*.json, outputs/*, test prompts and dvc.lock -> reports/index.html.

One self-contained page (no script, no URL): the headline win / tie / loss, LIMA-style charts, how reliable the
judge measured itself to be, record counts after each stage, a few answers side by side, and the lineage.
"""

from __future__ import annotations

import json
from pathlib import Path

from lessismore import records
from lessismore.config import load_params
from lessismore.lineage import git_commit, lineage_table, stage_lineage
from lessismore.report.build import STAGES, build_report

METRICS = Path("metrics")
JUDGMENTS = Path("outputs/judgments.jsonl")
RESPONSES = Path("outputs/responses")
PROMPTS = Path("data/validated/prompts.parquet")
LOCK = Path("dvc.lock")
OUT = Path("reports/index.html")


def read_metrics(stage: str) -> dict:
    path = METRICS / f"{stage}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def main() -> None:
    # ---------------------------------------------------------------- params and inputs
    params = load_params()
    stage_metrics = {stage: read_metrics(stage) for stage in STAGES}
    if not stage_metrics["judge"]:
        raise SystemExit(f"{METRICS / 'judge.json'} not found: run the judge stage first (`dvc repro judge`)")
    primary = stage_metrics["judge"].get("primary")  # side-by-side examples show the headline judge's verdicts
    judgments = [j for j in records.read_jsonl(JUDGMENTS, records.Judgment) if j.judge == primary]
    responses = [r for path in sorted(RESPONSES.glob("*.jsonl")) for r in records.read_jsonl(path, records.Response)]
    prompts = (
        [p for p in records.read_parquet(PROMPTS, records.Prompt) if p.split == "test"] if PROMPTS.exists() else []
    )
    lineage = lineage_table(stage_lineage(LOCK), git_commit("."))

    # ---------------------------------------------------------------- build and write
    html = build_report(
        title=params.report.title, experiment=params.base.experiment, judge_metrics=stage_metrics["judge"],
        stage_metrics=stage_metrics, judgments=judgments, responses=responses, prompts=prompts, lineage=lineage,
    )  # fmt: skip
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(html, encoding="utf-8")
    print(f"report: {len(html) / 1024:.0f} KiB -> {OUT}")


if __name__ == "__main__":
    main()
