"""Vega-Lite spec -> inline SVG string for the report, drawn at build time by vl-convert (no JavaScript on the page).

Sits under report/build.py; the specs come from report/specs.py and report/curves.py. vl-convert's SVG is made
fit to sit next to other charts in one HTML page: the white background and the xmlns declarations go (inline SVG
in HTML5 needs neither, and the page then holds no URL at all), and every id (clip paths, gradients) gets the
chart's own prefix so two charts never clip each other. Text in the SVG was escaped by vega.
"""

from __future__ import annotations

import re
from typing import Any

_TAG = re.compile(r"<[^>]+>")
_XMLNS = re.compile(r'\s+xmlns(?::\w+)?="[^"]*"')
_BACKGROUND = re.compile(r'^(<svg[^>]*>)<rect width="[\d.]+" height="[\d.]+" fill="white"/>')


def pct(x: float | None) -> str:
    """
    >>> pct(0.4567), pct(None)
    ('46%', 'n/a')
    """
    return "n/a" if x is None else f"{x:.0%}"


def clean_svg(svg: str, prefix: str, label: str = "") -> str:
    """Make one vl-convert SVG safe to inline next to others: no background, no xmlns, ids under `prefix`.

    >>> s = '<svg xmlns="http://www.w3.org/2000/svg" class="marks"><rect width="4" height="2" fill="white"/>'
    >>> s += '<clipPath id="clip1"/><g clip-path="url(#clip1)"><text>id="x"</text></g></svg>'
    >>> print(clean_svg(s, "fig1", "a <chart>").replace("><", ">\\n<"))
    <svg role="img" aria-label="a &lt;chart&gt;" class="marks chart">
    <clipPath id="fig1-clip1"/>
    <g clip-path="url(#fig1-clip1)">
    <text>id="x"</text>
    </g>
    </svg>
    """
    from html import escape

    svg = _BACKGROUND.sub(r"\1", svg.strip(), count=1)

    def tag(m: re.Match[str]) -> str:  # only inside tags: text content is left exactly as vega wrote it
        t = _XMLNS.sub("", m.group(0))
        t = re.sub(r'(\sid=")([^"]+")', rf"\g<1>{prefix}-\g<2>", t)
        t = re.sub(r'(\s(?:xlink:)?href="#)([^"]+")', rf"\g<1>{prefix}-\g<2>", t)
        return re.sub(r"url\(#([^)]+)\)", rf"url(#{prefix}-\1)", t)

    svg = _TAG.sub(tag, svg)
    svg = svg.replace('class="marks"', 'class="marks chart"', 1)  # the root tag comes first
    return svg.replace("<svg", f'<svg role="img" aria-label="{escape(label)}"', 1)


def render(spec: dict[str, Any], prefix: str, label: str = "") -> str:
    """One chart as an inline <svg> (the first call in a process starts vl-convert's engine: ~0.4 s)."""
    import vl_convert

    return clean_svg(vl_convert.vegalite_to_svg(spec), prefix, label)
