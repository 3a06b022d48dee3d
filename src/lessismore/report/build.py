"""The report stage's core: metrics, a few records and the lineage -> one self-contained HTML page.

Sits at the end of the pipeline (stages/report.py calls `build_report`). Inputs are plain dicts and records.py
types; the output is a string. The page has inline CSS and inline SVG (report/figures.py) and nothing else: no
script, no font, no URL, so it opens offline and can be attached to an issue. Model text is untrusted, so the
Jinja2 environment autoescapes everything; only the SVG built here is marked safe.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lessismore.judge.outcome import OUTCOMES, pair_outcomes
from lessismore.records import Judgment, Prompt, Response
from lessismore.report import figures

TEMPLATES = Path(__file__).parent / "templates"
STAGES = ("ingest", "validate", "curate", "train", "generate", "judge")  # the stages whose "counts" the page shows


def trust_sentence(rel: dict[str, Any]) -> str:
    """How far to trust the judge, in plain words, from its measured position consistency.

    Thresholds are this project's rule of thumb: a judge answering at random agrees with itself on about a third of
    swapped pairs, so below one half its verdicts mostly reflect where an answer is shown.
    >>> trust_sentence({"position_consistency": 0.9, "valid_pairs": 10}).startswith("The judge agreed")
    True
    """
    pc, n = rel.get("position_consistency"), rel.get("valid_pairs", 0)
    if pc is None or not n:
        return "The judge produced no readable pair of verdicts, so the results above say nothing about the models."
    words = [f"The judge agreed with itself when the order of the two answers was swapped on {pc:.0%} of {n} pairs"]
    words[0] += " (a judge answering at random would agree on about a third)."
    if (first := rel.get("first_position_preference")) is not None:
        words.append(
            f"It picked the answer shown first in {first:.0%} of its decisive verdicts (unbiased: about 50%)."
        )
    if (inv := rel.get("invalid_rate")) is not None and inv > 0:
        words.append(f"{inv:.0%} of its verdicts could not be read.")
    if (mass := rel.get("option_mass")) is not None:
        words.append(f"On average it gave the allowed answer letters {mass:.0%} of its next-token probability.")
    if pc < 0.5:
        words.append("Treat the win rates above as noise: this judge mostly reacts to answer order, not content.")
    elif pc < 0.75:
        words.append("Treat the win rates above as a weak signal, and read the intervals, not the point estimates.")
    else:
        words.append("Its verdicts are fairly stable under order swaps; differences inside the intervals are noise.")
    return " ".join(words)


def reliability_rows(rel: dict[str, Any]) -> list[dict[str, str]]:
    rows = [
        (
            "position consistency",
            "position_consistency",
            "share of pairs whose two orders agree",
            "high; random ≈ 33%",
        ),
        (
            "first-position preference",
            "first_position_preference",
            "decisive verdicts for the answer shown first",
            "≈ 50%",
        ),
        ("invalid rate", "invalid_rate", "verdicts that could not be read", "0%"),
        ("length bias", "length_bias", "decisive pairs won by the longer answer", "≈ 50% unless longer is better"),
        ("option mass", "option_mass", "probability on the allowed letters (logprobs mode)", "near 100%"),
        ("inconsistent pairs", "inconsistent_pairs", "pairs whose two orders disagree (counted as ties)", "few"),
    ]
    return [{"name": a, "value": _value(rel.get(k)), "meaning": m, "ideal": i} for a, k, m, i in rows]


def _value(v: Any) -> str:
    """A share as a percentage, a count as a number (n/a when missing).

    >>> _value(0.25), _value(3), _value(None)
    ('25%', '3', 'n/a')
    """
    return str(v) if isinstance(v, int) and not isinstance(v, bool) else figures.pct(v)


def count_rows(stage_metrics: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (stage, count name); a stage without metrics shows as not run."""
    rows = []
    for stage in STAGES:
        counts = (stage_metrics.get(stage) or {}).get("counts")
        if not counts:
            rows.append({"stage": stage, "name": "(no metrics: not run)", "n": None})
        rows += (
            [{"stage": stage, "name": k, "n": v} for k, v in counts.items() if isinstance(v, int)] if counts else []
        )
    return rows


def _chosen(j: Judgment) -> str:
    """A single verdict in words: which model the judge preferred.

    >>> _chosen(Judgment("p", "j", "t", "ba", "r1", "r2", "base", "ft", "b"))
    'ft'
    """
    return {"a": j.model_a, "b": j.model_b, "tie": "neither", "invalid": "unreadable"}.get(j.verdict, j.verdict)


def pick_examples(
    judgments: Sequence[Judgment], responses: Sequence[Response], prompts: Sequence[Prompt], candidate: str, k: int = 4
) -> list[dict[str, Any]]:
    """A few side-by-side pairs: one of each outcome first (win, tie, loss, invalid), then by prompt id."""
    by_id = {r.id: r for r in responses}
    texts = {p.id: p.text for p in prompts}
    outcomes = [o for o in pair_outcomes(judgments, candidate) if o.prompt_id in texts]
    firsts = [
        next(o for o in outcomes if o.outcome == kind) for kind in OUTCOMES if any(o.outcome == kind for o in outcomes)
    ]
    chosen = (firsts + [o for o in outcomes if o not in firsts])[:k]
    by_pair = {j.id: j for j in judgments}
    out = []
    for o in chosen:
        js = {by_pair[i].order: by_pair[i] for i in o.ids}
        ab = js.get("ab") or js["ba"]
        cand_id, base_id = (ab.response_a, ab.response_b) if ab.order == "ab" else (ab.response_b, ab.response_a)
        out.append(
            {
                "prompt": texts[o.prompt_id],
                "baseline": o.baseline,
                "outcome": o.outcome,
                "candidate_text": by_id[cand_id].text if cand_id in by_id else "(response not found)",
                "baseline_text": by_id[base_id].text if base_id in by_id else "(response not found)",
                "verdicts": [{"order": j.order, "chose": _chosen(j), "raw": j.raw} for _, j in sorted(js.items())],
            }
        )
    return out


def build_report(
    *,
    title: str,
    experiment: str,
    judge_metrics: dict[str, Any],
    stage_metrics: dict[str, dict],
    judgments: Sequence[Judgment] = (),
    responses: Sequence[Response] = (),
    prompts: Sequence[Prompt] = (),
    lineage: dict[str, Any] | None = None,
    examples: int = 4,
) -> str:
    """Render reports/index.html. `stage_metrics` maps stage name -> that stage's metrics/<stage>.json dict."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined
    from markupsafe import Markup

    candidate = judge_metrics.get("candidate", "candidate")
    baselines = judge_metrics.get("baselines") or {}
    rel = judge_metrics.get("reliability") or {}
    counts = count_rows(stage_metrics)
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined)
    env.filters["pct"] = figures.pct
    judges = judge_metrics.get("judges") or {}
    primary = {"name": judge_metrics.get("primary", "?"), "backend": "?", "mode": "?", "model": "?",
               "calibrate": False, "fingerprint": "?", "template": "?"}  # fmt: skip
    primary.update(judges.get(primary["name"], {}))
    return env.get_template("index.html.j2").render(
        title=title,
        experiment=experiment,
        judge=judge_metrics,
        judges=judges,
        primary=primary,
        ratings=judge_metrics.get("ratings") or {},
        injection=judge_metrics.get("injection") or {},
        agreement=judge_metrics.get("agreement") or {},
        humans=judge_metrics.get("humans"),
        candidate=candidate,
        baselines=baselines,
        fig_outcomes=Markup(figures.outcome_bars(baselines, candidate)) if baselines else None,
        fig_grades=Markup(figures.grade_bars(judge_metrics["grades"])) if judge_metrics.get("grades") else None,
        fig_counts=Markup(
            figures.count_bars([(f"{r['stage']}: {r['name']}", r["n"]) for r in counts if r["n"] is not None])
        ),
        reliability=reliability_rows(rel),
        trust=trust_sentence(rel),
        counts=counts,
        examples=pick_examples(judgments, responses, prompts, candidate, examples),
        lineage=lineage or {"artifacts": [], "params": {}, "git": {"commit": None, "dirty": False}, "stages": []},
    )
