"""Running suites with Great Expectations and writing its Data Docs, readable offline.

Sits in validate/: the core (validate/__init__.py) hands frames and expectations, batch by batch, to a
`GXSession`, an ephemeral GX context (nothing written outside the Data Docs folder), and reads back per-expectation
outcomes with the failing row positions (result_format COMPLETE). `write_docs` builds the Data Docs site, then
`make_offline` strips the CDN <script>/<link> tags GX's pages load (jQuery, Bootstrap, bootstrap-table, Font
Awesome, Vega) and points them at a small local stylesheet and a jQuery stand-in, so the pages render with no network.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_CDN_TAG = re.compile(r'<(script|link)\b[^>]*\b(?:src|href)="https?://[^"]*"[^>]*>(?:\s*</script>)?', re.IGNORECASE)
_STATIC_REF = re.compile(r"static/([\w./-]+)")
_WEB_ASSET = re.compile(r"https://great-expectations-web-assets\.s3[\w.-]*\.amazonaws\.com/([\w.-]+)(\?[^\"')]*)?")


@dataclass(frozen=True)
class Outcome:
    """What one expectation found: `rows` are the frame positions that failed it (empty for table checks)."""

    expectation: str  # the GX expectation type, e.g. expect_column_values_to_match_regex
    column: str
    success: bool
    unexpected: int
    rows: tuple[int, ...]
    meta: dict[str, Any]
    kwargs: dict[str, Any]
    missing: tuple[Any, ...] = ()  # contain-set checks: the expected values that were not there


class GXSession:
    """One ephemeral GX context: validate named frames with suites, then (optionally) build the Data Docs."""

    def __init__(self, docs_dir: str | Path | None = None):
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # never phone home, whoever calls us
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig
        from great_expectations.execution_engine import pandas_execution_engine

        # GX fingerprints each pandas batch (md5 over pandas' hash of every cell; pickling the frame when a cell is a
        # list) only to list it among the batch markers of its result: 9% of a validate worker's time on the 10x pool
        # (py-spy). A shard's lineage is DVC's hash of its file. GX's own threshold turns it off (frames at or past
        # it are not fingerprinted).
        pandas_execution_engine.HASH_THRESHOLD = 0
        self._gx = gx
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)  # one line per suite instead
        self.docs_dir = Path(docs_dir).resolve() if docs_dir else None
        if self.docs_dir:
            backend = {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(self.docs_dir)}
            site = {"class_name": "SiteBuilder", "store_backend": backend}
            self.context.add_data_docs_site(
                "lessismore", site | {"site_index_builder": {"class_name": "DefaultSiteIndexBuilder"}}
            )
        self.source = self.context.data_sources.add_pandas("lessismore")
        self._suites: dict[str, Any] = {}  # name -> the suite, added once, run on every batch
        self._taken: set[tuple[str, ...]] = set()  # the stored results new_results has handed out (or restored)

    def new_results(self) -> dict[str, str]:
        """The validation results stored since the last call, as GX serialised them ("/"-joined store key -> JSON):
        a resumed run restores them, so that its Data Docs show every batch, the killed run's too."""
        backend = self.context.validation_results_store.store_backend
        new = [k for k in backend.list_keys() if k not in self._taken and not k[0].startswith(".")]  # the store id
        self._taken.update(new)
        return {"/".join(k): backend.get(k) for k in new}

    def restore(self, results: dict[str, str]) -> None:
        """Put back results that new_results gave an earlier, killed run: write_docs builds their pages again."""
        backend = self.context.validation_results_store.store_backend
        for key, value in results.items():
            backend.set(tuple(key.split("/")), value)
            self._taken.add(tuple(key.split("/")))

    def suite(self, name: str, expectations: list[Any]) -> Any:
        """The suite `name`, added to the context the first time (a suite run elsewhere is listed in the docs too)."""
        if name not in self._suites:
            suite = self._gx.ExpectationSuite(name=name, expectations=expectations)
            self._suites[name] = self.context.suites.add(suite)
        return self._suites[name]

    def validate(self, name: str, frame: Any, expectations: list[Any], batch: str = "all rows") -> list[Outcome]:
        """Run `expectations` as suite `name` on `frame`, one batch of the suite's table (`batch` names it; each
        batch of a suite is one more run of the same suite, and one more page of the Data Docs)."""
        gx, suite = self._gx, self.suite(name, expectations)
        asset = name if batch == "all rows" else f"{name} {batch}"
        data = self.source.add_dataframe_asset(asset).add_batch_definition_whole_dataframe(batch)
        definition = self.context.validation_definitions.add(
            gx.ValidationDefinition(name=asset, data=data, suite=suite)
        )
        result = definition.run(batch_parameters={"dataframe": frame}, result_format="COMPLETE")
        # GX's execution engine keeps every batch's DataFrame in its cache (12 MB a 1,000-row shard of Stack
        # Exchange answers, measured): forget it, or memory grows with the shards; the stored result stays
        batches = self.source.get_execution_engine().batch_manager
        batches.reset_batch_cache()
        batches.batch_data_cache.clear()
        order = {e.id: i for i, e in enumerate(suite.expectations)}  # GX returns results in its own order
        return [_outcome(r) for r in sorted(result.results, key=lambda r: order.get(r.expectation_config.id, 0))]

    def write_docs(self) -> Path:
        """Build the Data Docs site into docs_dir (emptied first) and make it readable offline; returns index.html."""
        assert self.docs_dir, "GXSession was made without a docs_dir"
        shutil.rmtree(self.docs_dir, ignore_errors=True)
        self.context.build_data_docs()
        make_offline(self.docs_dir)
        return self.docs_dir / "index.html"


def _error(info: dict[str, Any] | None) -> str:
    """GX reports a crashed metric either flat or keyed by metric id; return its message ("" when none crashed)."""
    infos = [info or {}] if "raised_exception" in (info or {}) else list((info or {}).values())
    return next(
        (str(i.get("exception_message")) for i in infos if isinstance(i, dict) and i.get("raised_exception")), ""
    )


def _outcome(r: Any) -> Outcome:
    cfg, res = r.expectation_config, r.result or {}
    if error := _error(r.exception_info):  # a crashed check must not pass for a failing one with no bad rows
        raise RuntimeError(f"GX could not evaluate {cfg.type} on column {cfg.kwargs.get('column')!r}: {error}")
    missing = tuple(res.get("partial_missing_list") or ())  # contain-set checks list what is absent instead
    return Outcome(
        expectation=cfg.type,
        column=cfg.kwargs.get("column", ""),
        success=bool(r.success),
        unexpected=int(res.get("unexpected_count", res.get("missing_count")) or 0),
        rows=tuple(int(i) for i in res.get("unexpected_index_list") or ()),
        meta=dict(cfg.meta or {}),
        kwargs=dict(cfg.kwargs),
        missing=missing,
    )


# ----------------------------------------------------------------------------------------------------------------
# offline Data Docs: local stand-ins for what the CDN tags would have loaded


def make_offline(docs_dir: str | Path) -> int:
    """Rewrite every page under docs_dir to load no remote asset; returns how many pages were rewritten."""
    docs_dir = Path(docs_dir)
    static = docs_dir / "static"
    static.mkdir(parents=True, exist_ok=True)
    (static / "offline.css").write_text(_OFFLINE_CSS, encoding="utf-8")
    (static / "offline.js").write_text(_OFFLINE_JS, encoding="utf-8")
    pages = sorted(docs_dir.rglob("*.html"))
    used = set()
    for page in pages:
        rel = os.path.relpath(static, page.parent).replace(os.sep, "/")
        html = _rewrite(page.read_text(encoding="utf-8"), rel, static)
        page.write_text(html, encoding="utf-8")
        used |= set(_STATIC_REF.findall(html))
    for asset in [p for p in static.rglob("*") if p.is_file()]:  # GX copies 4 MB of fonts and walkthrough GIFs
        if asset.relative_to(static).as_posix() not in used:  # that no page shows: keep only what is linked
            asset.unlink()
    for folder in sorted((p for p in static.rglob("*") if p.is_dir()), reverse=True):  # deepest first
        if not any(folder.iterdir()):
            folder.rmdir()
    return len(pages)


def _rewrite(html: str, rel: str, static: Path) -> str:
    local = {
        "script": f'<script src="{rel}/offline.js"></script>',
        "link": f'<link rel="stylesheet" href="{rel}/offline.css">',
    }

    def swap(match: re.Match) -> str:  # the first <script> / <link> becomes the local copy, the rest go
        return local.pop(match.group(1).lower(), "")

    def image(match: re.Match) -> str:  # GX's logo lives in its S3 bucket; the same file ships in static/images
        name = match.group(1)
        return f"{rel}/images/{name}" if (static / "images" / name).exists() else ""

    return _WEB_ASSET.sub(image, _CDN_TAG.sub(swap, html))


# A few rules in place of Bootstrap: readable type, bordered tables, status colours, hidden modals.
_OFFLINE_CSS = """/* lessismore: offline stand-in for the Bootstrap and Font Awesome CSS of GX Data Docs */
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 1.5rem 2rem; color: #212529; }
nav.navbar { border-bottom: 1px solid #dee2e6; margin-bottom: 1rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; width: 100%; }
th, td { border: 1px solid #dee2e6; padding: .3rem .5rem; text-align: left; vertical-align: top; }
thead th, .table-active { background: #f1f3f5; }
.card, .alert { border: 1px solid #dee2e6; border-radius: 4px; padding: .5rem .75rem; margin: .5rem 0; }
.card-header { font-weight: 600; }
.text-success { color: #198754; } .text-danger { color: #dc3545; } .text-warning { color: #b58105; }
.fas.fa-check-circle::before { content: "\\2714"; } .fas.fa-exclamation-triangle::before { content: "\\26A0"; }
.fas.fa-times::before, .fas.fa-times-circle::before { content: "\\2718"; }
.modal, .sr-only, #ge-cta-footer { display: none !important; } .invisible { visibility: hidden; }
.nav-tabs { list-style: none; padding: 0; display: flex; gap: 1rem; }
pre, code { font-family: ui-monospace, monospace; white-space: pre-wrap; word-break: break-word; }
.clickable-row a { display: block; color: inherit; text-decoration: none; }
.clickable-row:hover { background: #f8f9fa; }
"""

# Just the jQuery / Bootstrap calls GX's pages make: $(...) selection, ready, on, classes, show/hide, parent, each,
# no-op modals, and bootstrapTable({columns, data}) drawn as a plain table whose rows link to their page.
_OFFLINE_JS = """/* lessismore: offline stand-in for the jQuery, Bootstrap and bootstrap-table calls of GX Data Docs */
(function () {
  function Q(nodes) { this.nodes = nodes; this.length = nodes.length; }
  var fn = Q.prototype;
  fn.each = function (f) { this.nodes.forEach(function (n, i) { f.call(n, i, n); }); return this; };
  fn.ready = function (f) { onReady(f); return this; };
  fn.on = function (ev, f) {
    return typeof f !== "function" ? this : this.each(function (i, n) { n.addEventListener(ev.split(".")[0], f); });
  };
  fn.addClass = function (c) { return this.each(function (i, n) { n.classList.add(c); }); };
  fn.removeClass = function (c) { return this.each(function (i, n) { n.classList.remove(c); }); };
  fn.show = fn.fadeIn = function () { return this.each(function (i, n) { n.style.display = ""; }); };
  fn.hide = fn.fadeOut = function () { return this.each(function (i, n) { n.style.display = "none"; }); };
  fn.parent = function () { return new Q(this.nodes.map(function (n) { return n.parentNode; }).filter(Boolean)); };
  fn.data = function (k) { return this.nodes.length ? this.nodes[0].getAttribute("data-" + k) : undefined; };
  fn.modal = fn.tooltip = fn.popover = fn.tab = fn.collapse = function () { return this; };
  fn.bootstrapTable = function (opts) {
    return typeof opts !== "object" ? this : this.each(function (i, n) { drawTable(n, opts); });
  };
  function onReady(f) {
    if (document.readyState !== "loading") f(); else document.addEventListener("DOMContentLoaded", f);
  }
  function select(x) {
    if (typeof x === "function") { onReady(x); return new Q([]); }
    if (typeof x !== "string") return new Q(x ? [x] : []);
    try { return new Q(Array.prototype.slice.call(document.querySelectorAll(x))); } catch (e) { return new Q([]); }
  }
  function drawTable(table, opts) {
    var cols = opts.columns || [], rows = opts.data || [];
    var head = cols.map(function (c) { return "<th>" + (c.title || c.field) + "</th>"; }).join("");
    var body = rows.map(function (r) {
      var link = r._table_row_link_path, cells = cols.map(function (c) {
        var v = r[c.field] == null ? "" : String(r[c.field]);
        return "<td>" + (link ? '<a href="' + link + '">' + v + "</a>" : v) + "</td>";
      });
      return "<tr" + (link ? ' class="clickable-row"' : "") + ">" + cells.join("") + "</tr>";
    }).join("");
    table.innerHTML = "<thead><tr>" + head + "</tr></thead><tbody>" + body + "</tbody>";
  }
  window.$ = window.jQuery = select;
})();
"""
