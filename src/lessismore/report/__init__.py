"""The report stage's library: one self-contained HTML page (inline CSS and SVG) from metrics, records and lineage.

`build.build_report` renders templates/index.html.j2 (one partial per section); `sections` shapes metrics into
rows, `specs` and `curves` turn rows into Vega-Lite specs, `figures` draws them to inline SVG with vl-convert,
`examples` picks the side-by-side answers, `judging` words the judge's reliability, and `plots` writes the offline
HTML template for `dvc plots show`.
"""
