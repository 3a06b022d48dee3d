"""Inline SVG charts for the report: plain strings, no JavaScript, no fonts or files fetched from anywhere.

Sits under report/build.py. Every function takes plain numbers and labels and returns one <svg> element; every
label is HTML-escaped here, because labels (model and source names) come from params and data. No xmlns attribute:
inline SVG in HTML5 does not need one, and the page then contains no URL at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

# Colour-blind-safe pairs (Okabe-Ito-like): candidate wins blue, tie grey, baseline wins orange.
OUTCOME_COLOURS = {"win": "#1f6fb4", "tie": "#bdbdbd", "loss": "#e8892b"}
GRADE_COLOURS = {"excellent": "#1f6fb4", "pass": "#9ecae1", "fail": "#e8892b"}
DARK = {"#1f6fb4", "#e8892b"}  # segments that need white text
FONT = 'font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="12"'


@dataclass(frozen=True)
class Bar:
    """One row of a stacked bar: shares (0..1, None: no data) per segment, and optional CI whiskers."""

    label: str
    shares: dict[str, float | None]
    note: str = ""  # shown right of the bar, e.g. "n=40"
    whiskers: list[tuple[float, float, str]] = field(default_factory=list)  # (lo, hi, colour) on the 0..1 axis


def pct(x: float | None) -> str:
    """
    >>> pct(0.4567), pct(None)
    ('46%', 'n/a')
    """
    return "n/a" if x is None else f"{x:.0%}"


def _text(x: float, y: float, s: str, anchor: str = "start", fill: str = "#222", weight: str = "normal") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{fill}" font-weight="{weight}" '
        f'dominant-baseline="middle">{escape(s)}</text>'
    )


def stacked_bars(bars: Sequence[Bar], segments: dict[str, str], legend: dict[str, str], title: str) -> str:
    """Horizontal 100% stacked bars (LIMA Figures 1 and 3): one row per Bar, segments in `segments` order."""
    left, width, right, row_h, gap, top = 170, 440, 90, 26, 18, 34  # pixels
    height = top + len(bars) * (row_h + gap) + 6
    parts = [
        f'<svg class="chart" role="img" width="{left + width + right}" height="{height}" '
        f'viewBox="0 0 {left + width + right} {height}" {FONT}><title>{escape(title)}</title>'
    ]
    x = left
    for name, colour in segments.items():  # legend across the top
        parts.append(f'<rect x="{x}" y="8" width="12" height="12" fill="{colour}"/>')
        parts.append(_text(x + 16, 14, legend.get(name, name)))
        x += 22 + 7 * len(legend.get(name, name))
    for i, bar in enumerate(bars):
        y = top + i * (row_h + gap)
        parts.append(_text(left - 8, y + row_h / 2, bar.label, anchor="end"))
        parts.append(_text(left + width + 8, y + row_h / 2, bar.note))
        if any(bar.shares.get(s) is None for s in segments):
            parts.append(f'<rect x="{left}" y="{y}" width="{width}" height="{row_h}" fill="#eee"/>')
            parts.append(_text(left + width / 2, y + row_h / 2, "no valid data", anchor="middle", fill="#666"))
            continue
        x = float(left)
        for name, colour in segments.items():
            w = width * float(bar.shares[name] or 0.0)
            parts.append(
                f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row_h}" fill="{colour}">'
                f"<title>{escape(legend.get(name, name))}: {pct(bar.shares[name])}</title></rect>"
            )
            if w >= 30:  # room for a label (pixels)
                fill = "#fff" if colour in DARK else "#222"
                parts.append(_text(x + w / 2, y + row_h / 2, pct(bar.shares[name]), "middle", fill, "bold"))
            x += w
        for k, (lo, hi, colour) in enumerate(bar.whiskers):  # 95% intervals: staggered brackets under the bar
            x0, x1, yw = left + width * lo, left + width * hi, y + row_h + 4 + 5 * k
            path = f"M{x0:.1f},{yw - 3} V{yw} H{x1:.1f} V{yw - 3}"
            parts.append(f'<path d="{path}" stroke="{colour}" stroke-width="1.5" fill="none"/>')
    parts.append("</svg>")
    return "".join(parts)


def outcome_bars(rows: dict[str, dict], candidate: str) -> str:
    """LIMA Figure 1: candidate vs each baseline; brackets show the 95% CI of the win and of the loss share."""
    bars = []
    for baseline, m in rows.items():
        ci = m.get("ci") or {}
        whiskers = []
        if ci.get("win"):
            whiskers.append((ci["win"][0], ci["win"][1], OUTCOME_COLOURS["win"]))
        if ci.get("loss"):  # the loss segment ends at 1.0, so its left edge sits at 1 - loss
            whiskers.append((1 - ci["loss"][1], 1 - ci["loss"][0], OUTCOME_COLOURS["loss"]))
        shares = {k: m.get(k) for k in OUTCOME_COLOURS}
        bars.append(Bar(f"vs {baseline}", shares, f"n={m.get('n', 0)}", whiskers))
    legend = {"win": f"{candidate} wins", "tie": "tie", "loss": "baseline wins"}
    return stacked_bars(bars, OUTCOME_COLOURS, legend, f"{candidate}: win / tie / loss against each baseline")


def grade_bars(grades: dict[str, dict]) -> str:
    """LIMA Figure 3: the share of excellent / pass / fail answers per model."""
    bars = [Bar(model, {k: g.get(k) for k in GRADE_COLOURS}, f"n={g.get('n', 0)}") for model, g in grades.items()]
    return stacked_bars(bars, GRADE_COLOURS, {k: k for k in GRADE_COLOURS}, "absolute grades per model")


def count_bars(rows: Sequence[tuple[str, int]], title: str = "records after each stage") -> str:
    """Record counts as horizontal bars on one linear scale (a funnel when read top to bottom)."""
    left, width, right, row_h, gap = 230, 360, 70, 16, 6  # pixels
    height = len(rows) * (row_h + gap) + 6
    top = max((n for _, n in rows), default=0) or 1
    parts = [
        f'<svg class="chart" role="img" width="{left + width + right}" height="{height}" '
        f'viewBox="0 0 {left + width + right} {height}" {FONT}><title>{escape(title)}</title>'
    ]
    for i, (label, n) in enumerate(rows):
        y = 3 + i * (row_h + gap)
        w = max(width * n / top, 1.0)  # pixels; at least a hairline so zero rows stay visible
        parts.append(_text(left - 8, y + row_h / 2, label, anchor="end"))
        parts.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{row_h}" fill="#1f6fb4"/>')
        parts.append(_text(left + w + 6, y + row_h / 2, f"{n:,}"))
    parts.append("</svg>")
    return "".join(parts)
