"""The report and the offline `dvc plots` page in a real headless Chromium (Debian's, driven by Playwright).

Every request the page makes is recorded and anything but the page's own file:// URL is aborted: the only request
must be the page itself. The report's charts must each have a size on screen and drawn marks; hostile names must
not run. The dvc plots page is made by the real `dvc plots show --html-template` in a tiny git + DVC repo, and
vega must draw every plot from the inlined bundle. Skipped, with the reason, when Playwright or Chromium is missing.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from lessismore.report.build import build_report
from tests.browser import launch
from tests.conftest import run_env
from tests.unit.test_report import CHARTS, rich_inputs

pytestmark = pytest.mark.slow

CHART_BOXES = """[...document.querySelectorAll('svg.chart')].map(s => {
  const r = s.getBoundingClientRect();
  return {label: s.getAttribute('aria-label'), w: r.width, h: r.height,
          marks: s.querySelectorAll('path[d]:not([d=""]), rect, line').length};
})"""
PLOT_DIVS = """[...document.querySelectorAll('body > div')].map(d => {
  const c = d.querySelector('canvas, svg');
  const r = c ? c.getBoundingClientRect() : {width: 0, height: 0};
  let marks = 0;
  if (c && c.tagName === 'svg') marks = c.querySelectorAll('path[d]:not([d=""])').length;
  if (c && c.tagName === 'CANVAS') {
    const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 3; i < px.length; i += 4) if (px[i] > 0) marks++;
  }
  return {id: d.id, kind: c ? c.tagName : null, w: r.width, h: r.height, marks};
})"""


@contextmanager
def offline_page(page_file: Path) -> Iterator[tuple[Any, list[str], list[str]]]:
    """A Chromium page at `page_file` that may load only that file: (page, every request URL, page errors)."""
    from playwright import sync_api

    url = page_file.resolve().as_uri()
    requests: list[str] = []
    errors: list[str] = []

    def gate(route: Any) -> None:
        requests.append(route.request.url)
        route.continue_() if route.request.url == url else route.abort()

    with sync_api.sync_playwright() as pw:
        browser = launch(pw)
        context = browser.new_context()
        context.route("**/*", gate)
        page = context.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("dialog", lambda d: (errors.append(f"dialog: {d.message}"), d.dismiss()))
        page.goto(url)
        try:
            yield page, requests, errors
        finally:
            browser.close()


def test_report_charts_draw_and_nothing_leaves_the_machine(tmp_path):
    out = tmp_path / "index.html"
    out.write_text(build_report(**rich_inputs(evil_labels=True)), encoding="utf-8")
    with offline_page(out) as (page, requests, errors):
        boxes = page.evaluate(CHART_BOXES)
        assert page.evaluate("document.querySelectorAll('script, img, link, iframe').length") == 0
    assert requests == [out.resolve().as_uri()]
    assert errors == []  # no script ran: no error, no alert() from the hostile names
    assert len(boxes) == len(CHARTS)
    for box in boxes:
        assert box["w"] > 100 and box["h"] > 50 and box["marks"] >= 5, box


def test_dvc_plots_show_with_the_offline_template_draws_offline(tmp_path):
    env = run_env()
    from lessismore.train.steplog import StepLog

    repo = tmp_path / "repo"
    repo.mkdir()
    log = StepLog(repo / "logs" / "train")  # what the train stage writes: DVCLive's per-step files
    for s in range(1, 9):
        log.write(s, {"loss": 2.5 * 0.9**s, "lr": 1e-4 * (1 - s / 10)})
    log.close()
    (repo / "dvc.yaml").write_text("plots:\n  - logs/train/plots/metrics:\n      x: step\n")  # as in our dvc.yaml
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["dvc", "config", "core.analytics", "false"]):
        subprocess.run(cmd, cwd=repo, env=env, check=True, capture_output=True)
    proc = subprocess.run(
        ["lessismore", "plots", "--out", "plots"], cwd=repo, env=env, capture_output=True, text=True, timeout=120
    )  # (what `make plots` runs: the template, then dvc)
    template = repo / ".dvc" / "tmp" / "plots_offline.html"
    assert "{plot_divs}" in template.read_text() and "{scripts}" not in template.read_text()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    html = (repo / "plots" / "index.html").read_text()
    assert "cdn.jsdelivr" not in html and "<script src" not in html
    with offline_page(repo / "plots" / "index.html") as (page, requests, errors):
        page.wait_for_function("document.querySelectorAll('body > div canvas, body > div svg').length >= 2")
        plots = page.evaluate(PLOT_DIVS)
    assert requests == [(repo / "plots" / "index.html").resolve().as_uri()]
    assert errors == []
    assert sorted(p["id"] for p in plots) == [
        "logs_train_plots_metrics_loss_tsv",
        "logs_train_plots_metrics_lr_tsv",
    ]
    for p in plots:
        assert p["w"] > 100 and p["h"] > 100 and p["marks"] > 0, p
