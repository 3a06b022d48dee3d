"""Vega-Lite specs for every chart on the report: plain dicts built from plain numbers and labels.

Sits between report/sections.py (which shapes metrics into rows) and report/figures.py (which renders a spec to
inline SVG with vl-convert at build time). Every label, model or source name travels as data, never as markup:
vega escapes it when it draws the text. No spec names a URL or a font file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# Colour-blind-safe: the candidate's good outcome blue, neutral grey, the bad outcome orange (LIMA's colour roles).
OUTCOME_COLOURS = {"win": "#1f6fb4", "tie": "#bdbdbd", "loss": "#e8892b"}
GRADE_COLOURS = {"excellent": "#1f6fb4", "pass": "#9ecae1", "fail": "#e8892b"}
DARK = {"#1f6fb4", "#e8892b"}  # segments that need white text
SOURCES = "tableau10"  # one colour per data source, the same in the funnel and the source mix
CONFIG = {
    "view": {"stroke": None},
    "axis": {"labelFontSize": 12, "titleFontSize": 12, "titleFontWeight": "normal", "labelLimit": 260},
    "legend": {"labelFontSize": 13, "titleFontSize": 12, "labelLimit": 260, "symbolType": "square"},
    "title": {"fontSize": 14, "anchor": "start", "offset": 8},
    "text": {"fontSize": 12},
}
Spec = dict[str, Any]


def chart(spec: Spec) -> Spec:
    """Page-wide settings: no background (the page is white), one font size scale."""
    return {"background": None, "config": CONFIG, **spec}


def _pct(x: float) -> str:
    return f"{x:.0%}"


def share_bars(
    rows: Sequence[Mapping[str, Any]], colours: Mapping[str, str], names: Mapping[str, str], title: str
) -> Spec:
    """LIMA Figures 1 and 3: one 100% stacked horizontal bar per row, segments in `colours` order.

    A row is {"label", "shares": {segment: share or None}, "ci": {segment: [lo, hi]}}; the first and the last
    segment's 95% intervals are drawn as brackets under the bar (where the first ends, where the last begins).
    A row with a missing share is drawn grey with "no valid data".

    >>> s = share_bars([{"label": "vs base", "shares": {"win": .5, "tie": .3, "loss": .2}, "ci": {"win": [.4, .6]}}],
    ...                OUTCOME_COLOURS, {"win": "ft wins", "tie": "tie", "loss": "base wins"}, "t")
    >>> [len(layer["data"]["values"]) for layer in s["layer"]]
    [3, 3, 1, 2, 0, 0, 0, 0]
    """
    segs, bars, texts, rules, empty = list(colours), [], [], [], []
    for r in rows:
        shares = r.get("shares") or {}
        if any(shares.get(s) is None for s in segs):
            empty.append({"row": r["label"], "x": 0, "x2": 1, "mid": 0.5, "text": "no valid data"})
            continue
        x = 0.0
        for s in segs:
            v = float(shares[s])
            bars.append({"row": r["label"], "segment": names[s], "x": x, "x2": x + v, "share": _pct(v)})
            if v >= 0.07:  # room for a label inside the segment
                texts.append(
                    {
                        "row": r["label"],
                        "mid": x + v / 2,
                        "text": _pct(v),
                        "ink": "#fff" if colours[s] in DARK else "#222",
                    }
                )
            x += v
        ci = r.get("ci") or {}
        for seg in (segs[0], segs[-1]):
            if bounds := ci.get(seg):
                lo, hi = bounds if seg == segs[0] else (1 - bounds[1], 1 - bounds[0])
                rules.append({"row": r["label"], "lo": lo, "hi": hi, "first": seg == segs[0], "ink": colours[seg]})
    order = [r["label"] for r in rows]
    y = {"field": "row", "type": "nominal", "sort": order, "title": None}
    x_axis = {"type": "quantitative", "scale": {"domain": [0, 1]}, "axis": {"format": "%", "title": None}}
    colour = {
        "field": "segment",
        "type": "nominal",
        "title": None,
        "legend": {"orient": "top"},
        "scale": {"domain": [names[s] for s in segs], "range": [colours[s] for s in segs]},
    }
    return chart(
        {
            "title": title,
            "width": 560,
            "height": {"step": 58},
            "layer": [
                {
                    "data": {"values": bars},
                    "mark": {"type": "bar", "size": 26},
                    "encoding": {
                        "y": y,
                        "x": {"field": "x", **x_axis},
                        "x2": {"field": "x2"},
                        "color": colour,
                        "tooltip": [{"field": "segment"}, {"field": "share"}],
                    },
                },
                {
                    "data": {"values": texts},
                    "mark": {"type": "text", "fontWeight": "bold"},
                    "encoding": {
                        "y": y,
                        "x": {"field": "mid", **x_axis},
                        "text": {"field": "text"},
                        "color": {"field": "ink", "type": "nominal", "scale": None},
                    },
                },
                *[
                    layer
                    for first, off in ((True, 19), (False, 25))
                    for layer in _brackets([r for r in rules if r["first"] == first], y, x_axis, off)
                ],
                {
                    "data": {"values": empty},
                    "mark": {"type": "bar", "size": 26, "color": "#eee"},
                    "encoding": {"y": y, "x": {"field": "x", **x_axis}, "x2": {"field": "x2"}},
                },
                {
                    "data": {"values": empty},
                    "mark": {"type": "text", "color": "#666"},
                    "encoding": {"y": y, "x": {"field": "mid", **x_axis}, "text": {"field": "text"}},
                },
            ],
        }
    )


def _brackets(rules: list[dict[str, Any]], y: Spec, x_axis: Spec, offset: int) -> list[Spec]:
    """CI brackets `offset` pixels below the bars' centre line: a rule from lo to hi and a tick at each end."""
    ink = {"field": "ink", "type": "nominal", "scale": None}
    return [
        {
            "data": {"values": rules},
            "mark": {"type": "rule", "strokeWidth": 1.6, "yOffset": offset},
            "encoding": {"y": y, "x": {"field": "lo", **x_axis}, "x2": {"field": "hi"}, "color": ink},
        },
        {
            "data": {"values": [{**r, "at": r[k]} for r in rules for k in ("lo", "hi")]},
            "mark": {"type": "tick", "orient": "vertical", "size": 7, "thickness": 1.6, "yOffset": offset},
            "encoding": {"y": y, "x": {"field": "at", **x_axis}, "color": ink},
        },
    ]


def outcome_spec(baselines: Mapping[str, Mapping[str, Any]], candidate: str) -> Spec:
    """LIMA Figure 1: candidate vs each baseline, win / tie / loss with the 95% CIs of win and loss."""
    rows = [
        {
            "label": f"vs {b} (n={m.get('n', 0)})",
            "shares": {k: m.get(k) for k in OUTCOME_COLOURS},
            "ci": m.get("ci") or {},
        }
        for b, m in baselines.items()
    ]
    names = {"win": f"{candidate} wins", "tie": "tie", "loss": "baseline wins"}
    return share_bars(rows, OUTCOME_COLOURS, names, f"{candidate} against each baseline")


def grade_spec(grades: Mapping[str, Mapping[str, Any]]) -> Spec:
    """LIMA Figure 3: the share of excellent / pass / fail answers per model."""
    rows = [
        {"label": f"{m} (n={g.get('n', 0)})", "shares": {k: g.get(k) for k in GRADE_COLOURS}}
        for m, g in grades.items()
    ]
    return share_bars(rows, GRADE_COLOURS, {k: k for k in GRADE_COLOURS}, "absolute grade of each answer")


def funnel_spec(funnel: Sequence[Mapping[str, Any]], sources: Sequence[str]) -> Spec:
    """The curation funnel: examples left after each step, stacked by source, the total at the bar's end."""
    parts = [
        {"step": s["step"], "source": src, "n": n}
        for s in funnel
        for src, n in (s.get("per_source") or {}).items()
        if isinstance(n, int | float)
    ]
    totals = [{"step": s["step"], "n": s["n"], "text": f"{s['n']:,}"} for s in funnel]
    y = {"field": "step", "type": "nominal", "sort": [s["step"] for s in funnel], "title": None}
    return chart(
        {
            "title": "examples left after each curation step",
            "width": 520,
            "height": {"step": 28},
            "layer": [
                {
                    "data": {"values": parts},
                    "mark": "bar",
                    "encoding": {
                        "y": y,
                        "x": {"aggregate": "sum", "field": "n", "type": "quantitative", "title": "examples"},
                        "color": {
                            "field": "source",
                            "type": "nominal",
                            "title": "source",
                            "scale": {"domain": list(sources), "scheme": SOURCES},
                        },
                        "tooltip": [{"field": "source"}, {"field": "n", "aggregate": "sum", "title": "examples"}],
                    },
                },
                {
                    "data": {"values": totals},
                    "mark": {"type": "text", "align": "left", "dx": 4},
                    "encoding": {"y": y, "x": {"field": "n", "type": "quantitative"}, "text": {"field": "text"}},
                },
            ],
        }
    )


def source_mix_spec(rows: Sequence[Mapping[str, Any]], sources: Sequence[str]) -> Spec:
    """Per source: candidates (grey) and how many were selected (colour), with the share of the selected set."""
    y = {"field": "source", "type": "nominal", "sort": [r["source"] for r in rows], "title": None}
    x = {"type": "quantitative", "title": "examples"}
    values = [{**r, "text": f"{r['selected']} of {r['candidates']} kept · {r['share']:.0%} of the set"} for r in rows]
    return chart(
        {
            "title": "source mix of the selected set",
            "width": 420,
            "height": {"step": 28},
            "data": {"values": values},
            "layer": [
                {"mark": {"type": "bar", "color": "#e3e3e3"}, "encoding": {"y": y, "x": {"field": "candidates", **x}}},
                {
                    "mark": "bar",
                    "encoding": {
                        "y": y,
                        "x": {"field": "selected", **x},
                        "color": {
                            "field": "source",
                            "type": "nominal",
                            "legend": None,
                            "scale": {"domain": list(sources), "scheme": SOURCES},
                        },
                    },
                },
                {
                    "mark": {"type": "text", "align": "left", "dx": 4},
                    "encoding": {"y": y, "x": {"field": "candidates", **x}, "text": {"field": "text"}},
                },
            ],
        }
    )


def score_spec(histograms: Mapping[str, Mapping[str, Any]], sources: Sequence[str]) -> Spec:
    """Selection by scores: per source (rows) and kind of score (columns), how the scored candidates spread (grey)
    and where the selected among them lie (colour). Each kind keeps its own scale (1-6 ratings, IFD near 1)."""
    values = [
        {"kind": kind, "source": source, "lo": lo, "hi": hi, "candidates": c, "selected": s}
        for kind, h in histograms.items()
        for source, counts in (h.get("per_source") or {}).items()
        for lo, hi, c, s in zip(h["edges"], h["edges"][1:], counts["candidates"], counts["selected"], strict=False)
    ]
    x = {"field": "lo", "type": "quantitative", "title": None, "scale": {"zero": False}}
    y = {"type": "quantitative", "title": "examples"}
    colour = {
        "field": "source",
        "type": "nominal",
        "legend": None,
        "scale": {"domain": list(sources), "scheme": SOURCES},
    }
    tip = [
        {"field": "lo", "title": "from"},
        {"field": "hi", "title": "to"},
        {"field": "candidates"},
        {"field": "selected"},
    ]
    return chart(
        {
            "title": "scores of the scored candidates (grey) and of the selected (colour)",
            "data": {"values": values},
            "facet": {
                "row": {"field": "source", "type": "nominal", "title": None, "sort": list(sources)},
                "column": {"field": "kind", "type": "nominal", "title": None, "sort": list(histograms)},
            },
            "spec": {
                "width": 150,
                "height": 70,
                "layer": [
                    {
                        "mark": {"type": "bar", "color": "#d0d0d0"},
                        "encoding": {
                            "x": x,
                            "x2": {"field": "hi"},
                            "y": {"field": "candidates", **y},
                            "y2": {"datum": 0},
                            "tooltip": tip,
                        },
                    },
                    {
                        "mark": "bar",
                        "encoding": {
                            "x": x,
                            "x2": {"field": "hi"},
                            "y": {"field": "selected", **y},
                            "y2": {"datum": 0},
                            "color": colour,
                        },
                    },
                ],
            },
            "resolve": {"scale": {"x": "independent", "y": "independent"}},
        }
    )
