"""Vega-Lite specs for the report's line and timing charts: training curves, the ablation curve, stage timings.

Sits next to report/specs.py (the bar charts) and under report/figures.py (which renders specs to SVG). Input rows
come from report/sections.py; names travel as data, so vega escapes them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lessismore.report.specs import Spec, chart

# step-log columns drawn (train/steplog.read_steps), in order: (column, panel title, d3 number format of the y axis)
TRAIN_PANELS = (
    ("loss", "training loss (response tokens)", ",.4~r"),
    ("lr", "learning rate", ".1e"),
    ("tokens_per_s", "throughput (tokens/s)", ",.4~r"),
    ("peak_mem_mb", "peak memory (MiB)", ",.4~r"),
)


def training_spec(steps: Sequence[Mapping[str, float]], marks: Sequence[Mapping[str, Any]] = ()) -> Spec:
    """One small line chart per logged column (loss, lr, tokens/s, memory) against the optimizer step.

    `marks` are checkpoints drawn on the loss panel as vertical rules: {"step", "label", "chosen": bool}.

    >>> s = training_spec([{"step": 1, "loss": 2.0, "lr": 1e-4}, {"step": 2, "loss": 1.5, "lr": 5e-5}])
    >>> [p["title"] for p in s["concat"]]
    ['training loss (response tokens)', 'learning rate']
    """
    present = [p for p in TRAIN_PANELS if any(p[0] in row for row in steps)]
    axis: Spec = {"format": ",d", "tickMinStep": 1}
    if len(steps) <= 12:  # few steps: a tick at each one (vega would add half steps)
        axis["values"] = sorted({row["step"] for row in steps})
    x = {
        "field": "step",
        "type": "quantitative",
        "title": "optimizer step",
        "axis": axis,
        "scale": {"nice": False, "padding": 8},
    }  # padding (pixels): the end points are not cut
    dots = len(steps) <= 40  # few steps: show each one
    panels = []
    for col, title, fmt in present:
        line = {
            "mark": {"type": "line", "point": dots, "color": "#1f6fb4"},
            "encoding": {
                "x": x,
                "y": {
                    "field": col,
                    "type": "quantitative",
                    "title": None,
                    "scale": {"zero": False},
                    "axis": {"format": fmt},
                },
                "tooltip": [{"field": "step"}, {"field": col, "format": fmt}],
            },
        }
        panel: Spec = {"title": title, "width": 380, "height": 170, "layer": [line]}
        if col == "loss" and marks:
            rows = [
                {"step": m["step"], "label": m["label"], "ink": "#e8892b" if m.get("chosen") else "#999"}
                for m in marks
            ]
            rule = {
                "data": {"values": rows},
                "mark": {"type": "rule", "strokeDash": [4, 3]},
                "encoding": {"x": x, "color": {"field": "ink", "type": "nominal", "scale": None}},
            }
            text = {
                "data": {"values": [r for r in rows if r["ink"] != "#999"]},
                "mark": {"type": "text", "align": "right", "dx": -3, "y": 8, "color": "#c0661b"},
                "encoding": {"x": x, "text": {"field": "label"}},
            }
            panel["layer"] += [rule, text]
        panels.append(panel)
    return chart({"data": {"values": list(steps)}, "columns": 2, "concat": panels})


def ablation_spec(points: Sequence[Mapping[str, Any]], baseline: str, metric: str = "win") -> Spec:
    """LIMA section 5: quality (the win rate with its 95% band) against the training-set size N, one line a variant.

    >>> s = ablation_spec([{"variant": "lima", "budget": 250, "value": .3, "lo": .2, "hi": .4, "n": 36}], "base")
    >>> s["encoding"]["x"]["scale"]["type"], len(s["layer"])
    ('log', 4)
    """
    budgets = sorted({p["budget"] for p in points})
    x = {
        "field": "budget",
        "type": "quantitative",
        "title": "training examples N (log scale)",
        "scale": {"type": "log", "nice": False, "padding": 12},
        "axis": {"values": budgets, "format": ",d"},
    }
    colour = {
        "field": "variant",
        "type": "nominal",
        "title": "curation variant",
        "scale": {"scheme": "dark2"},
        "legend": {"symbolOpacity": 1, "symbolType": "circle"},
    }
    y_title = f"{metric} rate against {baseline}"
    return chart(
        {
            "title": f"quality against training-set size: {metric} rate vs {baseline} with 95% CI",
            "width": 560,
            "height": 280,
            "data": {"values": list(points)},
            "encoding": {"x": x, "color": colour},
            "layer": [
                {
                    "mark": {"type": "area", "opacity": 0.15},
                    "encoding": {"y": {"field": "lo", "type": "quantitative"}, "y2": {"field": "hi"}},
                },
                {
                    "mark": {"type": "rule", "opacity": 0.6},
                    "encoding": {"y": {"field": "lo", "type": "quantitative"}, "y2": {"field": "hi"}},
                },
                {
                    "mark": {"type": "line", "point": {"filled": True, "size": 50}},
                    "encoding": {
                        "y": {
                            "field": "value",
                            "type": "quantitative",
                            "title": y_title,
                            "scale": {"domain": [0, 1]},
                            "axis": {"format": "%"},
                        },
                        "tooltip": [
                            {"field": "variant"},
                            {"field": "budget", "title": "N"},
                            {"field": "value", "title": metric, "format": ".0%"},
                            {"field": "n", "title": "pairs"},
                        ],
                    },
                },
                {
                    "mark": {"type": "text", "dy": -10, "fontSize": 10},
                    "encoding": {
                        "y": {"field": "value", "type": "quantitative"},
                        "text": {"field": "value", "format": ".0%"},
                    },
                },
            ],
        }
    )


def timing_spec(rows: Sequence[Mapping[str, Any]]) -> Spec:
    """Wall-clock seconds per stage (generate: one bar per model), the value at each bar's end."""
    values = [{**r, "text": f"{r['seconds']:,.1f} s"} for r in rows]
    y = {"field": "stage", "type": "nominal", "sort": [r["stage"] for r in rows], "title": None}
    x = {"field": "seconds", "type": "quantitative", "title": "seconds (wall clock)"}
    return chart(
        {
            "title": "time spent in each stage",
            "width": 460,
            "height": {"step": 24},
            "data": {"values": values},
            "layer": [
                {"mark": {"type": "bar", "color": "#7f8c9a"}, "encoding": {"y": y, "x": x}},
                {
                    "mark": {"type": "text", "align": "left", "dx": 4},
                    "encoding": {"y": y, "x": x, "text": {"field": "text"}},
                },
            ],
        }
    )
