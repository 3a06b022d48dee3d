"""Shapes each stage's metrics into the rows a report section shows: pure functions over plain dicts.

Sits between the metrics files (read by stages/report.py) and report/build.py. Each function returns empty rows
(or None) when its input is missing, so the section says "not run" instead of failing. None touches the disk: the
training curves come from train/steplog.read_steps (the DVCLive log), read by the stage.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lessismore.contract import group

TIMED = ("ingest", "validate", "curate", "train", "generate", "judge")  # stages whose metrics hold "seconds"
SCORES = {"dev_loss": "dev loss (lower wins)", "judge": "judge's preference over base on dev prompts (higher wins)"}


def funnel(curate: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """The curation funnel's steps and every source seen in it (sorted: the colour order of both charts).

    >>> funnel({"funnel": [{"step": "validated", "n": 3, "per_source": {"se": 2, "wh": 1}}]})[1]
    ['se', 'wh']
    """
    steps = [s for s in curate.get("funnel") or [] if isinstance(s, Mapping) and "step" in s and "n" in s]
    sources = sorted({src for s in steps for src in s.get("per_source") or {}} | set(curate.get("per_source") or {}))
    return steps, sources


def source_mix(curate: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per source: candidates, selected, and the share of the selected set it makes up.

    >>> source_mix({"per_source": {"a": {"candidates": 4, "selected": 1}, "b": {"candidates": 3, "selected": 3}}})[0]
    {'source': 'a', 'candidates': 4, 'selected': 1, 'share': 0.25}
    """
    per = {k: v for k, v in (curate.get("per_source") or {}).items() if isinstance(v, Mapping)}
    rows = [
        {"source": s, "candidates": _count(v.get("candidates")), "selected": _count(v.get("selected"))}
        for s, v in per.items()
    ]
    total = sum(r["selected"] for r in rows) or 1
    return [{**r, "share": r["selected"] / total} for r in rows]


def _count(value: Any) -> int:
    """A count from a metrics file; anything that is not a number counts as 0 (the chart shows an empty bar).

    >>> _count(3), _count(2.0), _count("x"), _count(None), _count(True)
    (3, 2, 0, 0, 0)
    """
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def checkpoint_marks(train: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Epoch-end checkpoints as {"step", "label", "chosen"} for the loss curve (the chosen one named).

    >>> checkpoint_marks({"checkpoints": [{"step": 4, "epoch": 1, "epoch_end": True, "path": "c/4"}],
    ...                   "selection": {"chosen_path": "c/4"}})
    [{'step': 4, 'label': 'chosen: epoch 1', 'chosen': True}]
    """
    chosen = (train.get("selection") or {}).get("chosen_path")
    marks = []
    for c in train.get("checkpoints") or []:
        if c.get("epoch_end") or c.get("path") == chosen:
            is_chosen = c.get("path") == chosen
            label = f"{'chosen: ' if is_chosen else ''}epoch {c.get('epoch')}"
            marks.append({"step": c.get("step"), "label": label, "chosen": is_chosen})
    return marks


def train_summary(train: Mapping[str, Any]) -> str:
    """The training run in one line, from whatever metrics/train.json recorded.

    >>> train_summary({"method": "lora", "counts": {"examples": 96, "steps": 12}, "final_loss": 2.9, "seconds": 372.3})
    'lora on 96 examples: 12 optimizer steps, final loss 2.9, 372 s'
    """
    counts = train.get("counts") or {}
    facts = [
        (train.get("steps", counts.get("steps")), "{} optimizer steps"),
        (train.get("epochs"), "{} epochs"),
        (train.get("final_loss"), "final loss {}"),
        (train.get("tokens_per_s"), "{:,} tokens/s"),
        (train.get("seconds"), "{:,.0f} s"),
        (train.get("precision"), "{}"),
        (train.get("world_size") if (train.get("world_size") or 1) > 1 else None, "on {} processes"),
        (train.get("resumed_from_step") or None, "resumed from step {}"),
    ]
    head = f"{train.get('method', 'training')} on {counts.get('examples', '?')} examples"
    return head + ": " + ", ".join(fmt.format(v) for v, fmt in facts if v is not None)


def selection(train: Mapping[str, Any]) -> dict[str, Any] | None:
    """The checkpoint-selection table of metrics/train.json, each candidate with its step; None when absent."""
    sel = train.get("selection")
    if not isinstance(sel, Mapping):
        return None
    steps = {c.get("path"): c.get("step") for c in train.get("checkpoints") or []}
    rows = [{**c, "step": steps.get(c.get("path"))} for c in sel.get("candidates") or []]
    return {
        "mode": sel.get("mode", "?"),
        "reason": sel.get("reason", ""),
        "epochs": sel.get("select_epochs") or [],
        "score_name": SCORES.get(sel.get("mode", ""), "not scored"),
        "rows": rows,
    }


def with_timings(
    stage_metrics: Mapping[str, Mapping[str, Any]], timings: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Each stage's metrics with its timing file's figures put back where the report reads them: "seconds" and
    "tokens_per_s" at the top, and each judge's cost (calls, cache hits, tokens, dollars, seconds) as its "cost".

    >>> m = with_timings({"judge": {"judges": {"j": {"baselines": {}}}}}, {"judge": {"seconds": 9.0,
    ...                  "judges": {"j": {"calls": 3, "seconds": 8.5}}}, "ingest": {"seconds": 1.5}})
    >>> m["judge"]["seconds"], m["judge"]["judges"]["j"]["cost"], m["ingest"]
    (9.0, {'calls': 3, 'seconds': 8.5}, {})
    """
    out = {stage: dict(m) for stage, m in stage_metrics.items()}
    for stage, timing in timings.items():
        if not out.get(stage):
            out[stage] = {}  # a stage that wrote no metrics stays "not run", whatever its timing file says
            continue
        out[stage] |= {k: v for k, v in timing.items() if k in ("seconds", "tokens_per_s")}
        for name, cost in (timing.get("judges") or {}).items():
            judge = out[stage].get("judges", {}).get(name)
            if isinstance(judge, Mapping) and isinstance(cost, Mapping):
                out[stage]["judges"] = {**out[stage]["judges"], name: {**judge, "cost": dict(cost)}}
    return out


def per_system(
    metrics: Mapping[str, Mapping[str, Any]], timings: Mapping[str, Mapping[str, Any]]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The files of generate@<model> and import@<name> (metrics/generate/<system>.json and their timings) as the one
    "generate" entry the page reads: the answers counted per system, the seconds per system.

    >>> per_system({"base": {"responses": 3}, "gpt4": {"responses": 2}}, {"base": {"seconds": 4.0}, "gpt4": {}})
    ({'counts': {'responses': 5, 'base': 3, 'gpt4': 2}}, {'seconds': {'base': 4.0}})
    >>> per_system({}, {})
    ({}, {})
    """
    counts = {name: int(m.get("responses", 0)) for name, m in metrics.items()}
    result = {"counts": {"responses": sum(counts.values()), **counts}} if metrics else {}
    seconds = {name: t["seconds"] for name, t in timings.items() if isinstance(t.get("seconds"), int | float)}
    return result, ({"seconds": seconds} if seconds else {})


def stage_timings(stage_metrics: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Wall-clock seconds per stage (metrics/timing/<stage>.json, through with_timings); generate's is per model.

    >>> stage_timings({"ingest": {"seconds": 1.5}, "generate": {"seconds": {"base": 3.0}}, "judge": {}})
    [{'stage': 'ingest', 'seconds': 1.5}, {'stage': 'generate: base', 'seconds': 3.0}]
    """
    rows = []
    for stage in TIMED:
        secs = (stage_metrics.get(stage) or {}).get("seconds")
        if isinstance(secs, Mapping):
            rows += [{"stage": f"{stage}: {m}", "seconds": float(s)} for m, s in secs.items()]
        elif isinstance(secs, int | float):
            rows.append({"stage": stage, "seconds": float(secs)})
    return rows


def judge_costs(judges: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per judge from metrics/judge.json judges[name]["cost"] (calls, cached, tokens, dollars, seconds)."""
    keys = ("calls", "cached", "prompt_tokens", "completion_tokens", "cost_usd", "seconds")
    return [{"judge": name, **{k: (j.get("cost") or {}).get(k, 0) for k in keys}} for name, j in judges.items()]


def instances(stages: Sequence[str], ran: Sequence[str]) -> list[str]:
    """The dvc.lock stages that `stages` (dvc.yaml names) became: a foreach stage's every instance; a stage that has
    not run stays as named when nothing ran at all (no dvc.lock).

    >>> instances(["judge", "generate", "import"], ["generate@base", "generate@finetuned", "judge"])
    ['judge', 'generate@base', 'generate@finetuned']
    >>> instances(["judge", "generate"], [])
    ['judge', 'generate']
    """
    if not ran:
        return list(stages)
    return [s for g in stages for s in ran if group(s) == g]


def provenance(lineage: Mapping[str, Any], *whats: str) -> list[dict[str, Any]]:
    """The artifacts a number depends on, in the order asked, with their dvc.lock hash (or None: not recorded).

    >>> art = {"what": "checkpoint", "path": "models/finetuned", "stage": "train", "md5": "ab.dir"}
    >>> provenance({"artifacts": [art]}, "judgments", "checkpoint")[1]["md5"]
    'ab.dir'
    """
    by_what = {a["what"]: a for a in lineage.get("artifacts") or []}
    return [
        {
            "what": w,
            "path": by_what.get(w, {}).get("path", "?"),
            "stage": by_what.get(w, {}).get("stage", "?"),
            "md5": by_what.get(w, {}).get("md5") or None,
        }
        for w in whats
    ]


def ablation_points(ablation: Mapping[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """metrics/ablation.json points -> chart rows {variant, budget, value, lo, hi, n, exp, rev}; and how many were
    left out (no budget or no value for the metric).

    >>> ablation_points({"metric": "win", "points": [{"variant": "lima", "budget": 250, "n": 9, "win": 0.3,
    ...                   "ci": {"win": [0.1, 0.5]}}, {"variant": "lima", "budget": 500}]})
    ([{'variant': 'lima', 'budget': 250, 'value': 0.3, 'lo': 0.1, 'hi': 0.5, 'n': 9, 'exp': '', 'rev': ''}], 1)
    """
    metric, rows, bad = ablation.get("metric", "win"), [], 0
    for p in ablation.get("points") or []:
        value, ci = p.get(metric), (p.get("ci") or {}).get(metric) or [None, None]
        if not isinstance(p.get("budget"), int | float) or p["budget"] <= 0 or not isinstance(value, int | float):
            bad += 1
            continue
        lo, hi = (ci[0], ci[1]) if None not in ci else (value, value)
        rows.append(
            {
                "variant": str(p.get("variant", "?")),
                "budget": p["budget"],
                "value": value,
                "lo": lo,
                "hi": hi,
                "n": p.get("n", 0),
                "exp": p.get("exp") or "",
                "rev": p.get("rev") or "",
            }
        )
    return sorted(rows, key=lambda r: (r["variant"], r["budget"])), bad
