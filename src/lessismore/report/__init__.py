"""The report stage's library: one self-contained HTML page (inline CSS and SVG) from metrics, records and lineage.

`build.build_report` renders templates/index.html.j2; `figures` draws the charts as inline SVG strings.
"""
