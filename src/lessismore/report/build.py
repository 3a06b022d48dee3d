"""The report stage's core: metrics, a few records, the step log and the lineage -> one self-contained HTML page.

Sits at the end of the pipeline (stages/report.py calls `build_report`). Inputs are plain dicts and records.py
types; the output is a string. Charts are Vega-Lite specs (report/specs.py, report/curves.py) drawn to inline SVG
at build time (report/figures.py), so the page has inline CSS and SVG and nothing else: no script, no font, no URL;
it opens offline and can be attached to an issue. Each section appears when its stage's metrics exist and says
"not run" otherwise. Model text is untrusted: the Jinja2 environment autoescapes everything and chart labels go
into the specs as data; only the SVG built here is marked safe.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lessismore.records import Judgment, Prompt, Response
from lessismore.report import curves, figures, sections, specs
from lessismore.report.examples import pick_examples
from lessismore.report.judging import reliability_rows, trust_sentence, which_to_read

TEMPLATES = Path(__file__).parent / "templates"
STAGES = ("ingest", "validate", "curate", "train", "generate", "judge")  # the stages whose "counts" the page shows
NO_LINEAGE = {"artifacts": [], "params": {}, "git": {"commit": None, "dirty": False}, "stages": []}
# which artifacts (lineage.ARTIFACTS labels) and which stages' params each headline number depends on
UPSTREAM = ("judge", "generate", "import", "train", "curate")  # dvc.yaml stages: generate stands for generate@<model>
DEPENDS = {
    "win / tie / loss, Bradley–Terry": (("judgments", "responses", "checkpoint", "curated data"), UPSTREAM),
    "absolute grades": (("ratings", "responses", "checkpoint", "curated data"), UPSTREAM),
}
PROV_COLUMNS = ("judgments", "ratings", "responses", "checkpoint", "curated data")

__all__ = ["STAGES", "build_report", "count_rows", "pick_examples", "reliability_rows", "trust_sentence"]


def count_rows(stage_metrics: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per stage with its record counts ({name: n}); None for a stage without metrics (not run).

    >>> count_rows({"ingest": {"counts": {"examples": 3, "note": "x"}}})[:2]
    [{'stage': 'ingest', 'counts': {'examples': 3}}, {'stage': 'validate', 'counts': None}]
    """
    rows = []
    for stage in STAGES:
        counts = (stage_metrics.get(stage) or {}).get("counts")
        ints = {k: v for k, v in counts.items() if isinstance(v, int)} if isinstance(counts, Mapping) else {}
        rows.append({"stage": stage, "counts": ints if stage_metrics.get(stage) else None})
    return rows


def param_text(value: Any) -> str:
    """A param value as compact JSON (lists and mappings as written in params.yaml, not Python's repr).

    >>> param_text(["q_proj", "v_proj"]), param_text(0.0002), param_text("lima")
    ('["q_proj", "v_proj"]', '0.0002', 'lima')
    """
    import json

    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def short(digest: str | None) -> str:
    """A dvc.lock md5 cut to its first 8 hex digits (the page shows the full one on hover), or a dash.

    >>> short("0123456789abcdef.dir"), short(None)
    ('01234567', '–')
    """
    return digest[:8] if digest else "–"


def charts(
    judge: Mapping[str, Any],
    curate: Mapping[str, Any],
    train: Mapping[str, Any],
    steps: Sequence[Mapping[str, float]],
    ablation: Mapping[str, Any],
    points: Sequence[Mapping[str, Any]],
    timings: Sequence[Mapping[str, Any]],
) -> dict[str, str | None]:
    """Every chart whose data exists, as inline SVG (None where there is nothing to draw)."""
    candidate = judge.get("candidate", "candidate")
    steps_funnel, sources = sections.funnel(curate)
    mix = sections.source_mix(curate)
    scored = curate.get("scores") or {}  # the variants that select by model-based scores
    todo = {
        "outcomes": (
            specs.outcome_spec(judge["baselines"], candidate) if judge.get("baselines") else None,
            "win, tie and loss against each baseline",
        ),
        "grades": (specs.grade_spec(judge["grades"]) if judge.get("grades") else None, "absolute grades per model"),
        "funnel": (specs.funnel_spec(steps_funnel, sources) if steps_funnel else None, "curation funnel"),
        "sources": (specs.source_mix_spec(mix, sources) if mix else None, "source mix of the selected set"),
        "scores": (
            specs.score_spec(scored["histograms"], sources) if scored.get("histograms") else None,
            "scores of the candidates and of the selected",
        ),
        "training": (
            curves.training_spec(steps, sections.checkpoint_marks(train)) if steps else None,
            "training curves",
        ),
        "ablation": (
            curves.ablation_spec(points, ablation.get("baseline", "?"), ablation.get("metric", "win"))
            if points
            else None,
            "quality against training-set size",
        ),
        "timings": (curves.timing_spec(timings) if timings else None, "seconds per stage"),
    }
    return {name: figures.render(spec, f"fig-{name}", label) if spec else None for name, (spec, label) in todo.items()}


def build_report(
    *,
    title: str,
    experiment: str,
    judge_metrics: Mapping[str, Any],
    stage_metrics: Mapping[str, Mapping[str, Any]],
    judgments: Sequence[Judgment] = (),
    responses: Sequence[Response] = (),
    prompts: Sequence[Prompt] = (),
    lineage: Mapping[str, Any] | None = None,
    train_steps: Sequence[Mapping[str, float]] = (),
    ablation: Mapping[str, Any] | None = None,
    notes: Sequence[str] = (),
    examples: int = 4,
) -> str:
    """Render reports/index.html. `stage_metrics` maps stage name -> that stage's metrics/<stage>.json dict;
    `train_steps` are logs/train_steps.csv rows (sections.read_step_log), `ablation` is metrics/ablation.json and
    `notes` are problems met while reading the inputs (shown at the end of the page)."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined
    from markupsafe import Markup

    judge = judge_metrics or {}
    curate, train = stage_metrics.get("curate") or {}, stage_metrics.get("train") or {}
    ablation = ablation or {}
    points, bad_points = sections.ablation_points(ablation)
    timings = sections.stage_timings(stage_metrics)
    svgs = charts(judge, curate, train, train_steps, ablation, points, timings)
    lineage = lineage or NO_LINEAGE
    judges = judge.get("judges") or {}
    # an older judge.json had one judge, described at the top level
    primary = {
        "name": judge.get("primary") or judge.get("judge", "?"),
        "backend": "?",
        "mode": judge.get("mode", "?"),
        "model": judge.get("judge_model", "?"),
        "calibrate": False,
        "fingerprint": "?",
        "template": judge.get("template", "?"),
    }
    primary.update(judges.get(primary["name"], {}))
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined)
    env.filters.update(pct=figures.pct, short=short, param=param_text)
    return env.get_template("index.html.j2").render(
        title=title,
        experiment=experiment,
        judge=judge,
        judges=judges,
        primary=primary,
        candidate=judge.get("candidate", "candidate"),
        baselines=judge.get("baselines") or {},
        ratings=judge.get("ratings") or {},
        style=judge.get("style_control") or {},
        injection=judge.get("injection") or {},
        agreement=judge.get("agreement") or {},
        humans=judge.get("humans"),
        reliability=reliability_rows(judge.get("reliability") or {}),
        trust=trust_sentence(judge.get("reliability") or {}),
        which=which_to_read(judge.get("baselines") or {}, primary.get("strong_weight")),
        fig={name: Markup(svg) if svg else None for name, svg in svgs.items()},  # built here, escaped by vega
        ran={stage: bool(stage_metrics.get(stage)) for stage in STAGES},
        counts=count_rows(stage_metrics),
        curate=curate,
        eval_sets=(stage_metrics.get("validate") or {}).get("eval") or {},
        sources=sections.source_mix(curate),
        funnel=sections.funnel(curate)[0],
        train=train,
        train_summary=sections.train_summary(train),
        selection=sections.selection(train),
        n_steps=len(train_steps),
        ablation=ablation,
        points=points,
        bad_points=bad_points,
        examples=pick_examples(judgments, responses, prompts, judge.get("candidate", "candidate"), examples),
        lineage=lineage,
        prov_columns=PROV_COLUMNS,
        depends=[
            {
                "number": number,
                "stages": sections.instances(stages, lineage.get("stages") or ()),
                "cells": {a["what"]: a for a in sections.provenance(lineage, *whats)},
            }
            for number, (whats, stages) in DEPENDS.items()
        ],
        timings=timings,
        costs=sections.judge_costs(judges),
        notes=list(notes),
    )
