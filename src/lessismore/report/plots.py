"""An offline HTML template for `dvc plots show --html-template`: vega, vega-lite and vega-embed inlined.

DVC's default page (dvc-render's PAGE_HTML) loads vega from a CDN through its `{scripts}` placeholder, so the
training curves of `dvc plots show` stay blank on a machine without internet. This template has no `{scripts}`
placeholder; instead it carries vl-convert's JavaScript bundle (vega, vega-lite, vega-embed; ~0.9 MB, the same
pinned package that draws the report's SVG) in one classic <script> in <head>, so every plot div's inline
`vegaEmbed('#id', spec)` call (dvc-render's VegaRenderer) finds a global `vegaEmbed` when it runs. Written once,
e.g. under .dvc/tmp/, by `lessismore plots`; nothing in it points at the network.
"""

from __future__ import annotations

from pathlib import Path

PLOTS = "{plot_divs}"  # dvc-render fills these two placeholders; "{scripts}" (the CDN tags) must not appear
REFRESH = "{refresh_tag}"
PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
__REFRESH__
<title>lessismore: training curves (dvc plots)</title>
<script>
/* vega, vega-lite and vega-embed, bundled offline by vl-convert __VERSION__; sets window.vegaEmbed */
(function () {
__BUNDLE__
})();
</script>
<style>
  body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; margin: 1.5rem; }
  h1 { font-size: 1.3rem; } p { color: #555; max-width: 60rem; }
  body > div { display: inline-block; vertical-align: top; margin: 0 1.5rem 1.5rem 0; }
</style>
</head>
<body>
<h1>Training curves</h1>
<p>From the train stage's DVCLive log (<code>logs/train/plots/metrics/</code>, one row per optimizer step), as declared
in <code>dvc.yaml</code>. Rendered offline: the plotting library is inside this file.</p>
__PLOTS__
</body>
</html>
"""


def offline_page(bundle: str, version: str = "") -> str:
    """The template text around a JavaScript bundle that assigns window.vegaEmbed (pure; see write_offline_template).

    >>> page = offline_page("window.vegaEmbed = function () {};")
    >>> "{plot_divs}" in page, "{scripts}" in page, "http" in page
    (True, False, False)
    """
    for placeholder in ("{scripts}", PLOTS, REFRESH):
        if placeholder in bundle:  # dvc-render replaces placeholders anywhere in the page, the bundle included
            raise ValueError(f"the vega bundle contains {placeholder!r}; dvc plots would corrupt it")
    if "</script" in bundle.lower():
        raise ValueError("the vega bundle contains '</script'; it cannot be inlined in one <script> element")
    page = PAGE.replace("__VERSION__", version).replace("__REFRESH__", REFRESH).replace("__PLOTS__", PLOTS)
    return page.replace("__BUNDLE__", bundle)


def write_offline_template(path: Path) -> Path:
    """Write the offline `dvc plots show --html-template` page to `path` (parents created) and return `path`.

    Use: `dvc plots show --html-template <path> -o <dir>` then open <dir>/index.html; no request leaves the machine.
    """
    import importlib.metadata

    import vl_convert

    page = offline_page(vl_convert.javascript_bundle(), importlib.metadata.version("vl-convert-python"))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
