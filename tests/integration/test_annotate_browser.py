"""A real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright) judges through the page.

It completes a pairwise and an absolute session, by clicking and by keyboard, against a real uvicorn server on
127.0.0.1; the export must then hold exactly those judgments, no request may leave 127.0.0.1, and the answers'
<script> and onerror attributes must stay inert. Skipped, with the reason, when Playwright or Chromium is missing.
"""

from __future__ import annotations

import pytest

from lessismore.annotate import candidate_side, store
from lessismore.annotate.app import create_app
from lessismore.records import iter_jsonl
from tests.browser import launch
from tests.integration.test_annotate_app import make_items, serve_in_thread

SEED = 5
WIN = {"ab": {"a": "win", "b": "loss", "tie": "tie"}, "ba": {"a": "loss", "b": "win", "tie": "tie"}}

pytestmark = pytest.mark.slow


def test_chromium_completes_both_sessions_by_click_and_keyboard(tmp_path):
    from playwright import sync_api

    items = make_items(3, xss=True)  # 3 pairwise, 6 absolute items, every answer an XSS attempt
    db, out = tmp_path / "h.sqlite", tmp_path / "human_judgments.jsonl"
    app = create_app(db, items, overlap=0, seed=SEED)
    expected: dict[str, str] = {}
    with serve_in_thread(app) as base, sync_api.sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page()
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(base + "/")
        page.fill("#name", "ann")
        with page.expect_navigation():
            page.click("#set-name")
        with page.expect_navigation():
            page.click("#go-pairwise")
        # pairwise: a click, then the keys "b" and "3" (neither is better)
        for i, (how, label) in enumerate([("#choose-a", "a"), ("b", "b"), ("3", "tie")]):
            assert page.inner_text("#progress") == f"{i + 1} of 3"
            key = page.get_attribute("input[name=item]", "value")
            assert "<script>window.__xss" in page.inner_text("#answer-a")  # shown as text, not run
            with page.expect_navigation():
                page.click(how) if how.startswith("#") else page.keyboard.press(how)
            expected[key] = WIN[candidate_side("ann", key, SEED)][label]
        assert "All 3 comparisons done" in page.inner_text("#done")
        page.goto(base + "/absolute")
        for how, grade in [
            ("e", "excellent"),
            ("#grade-fail", "fail"),
            ("p", "pass"),
            ("1", "excellent"),
            ("2", "pass"),
            ("f", "fail"),
        ]:
            key = page.get_attribute("input[name=item]", "value")
            with page.expect_navigation():
                page.click(how) if how.startswith("#") else page.keyboard.press(how)
            expected[key] = grade
        assert "All 6 grades done" in page.inner_text("#done")
        assert page.evaluate("typeof window.__xss") == "undefined"
        browser.close()
    assert requests and all(u.startswith(base + "/") for u in requests), requests
    assert errors == []
    assert store.export(db, out) == 9
    rows = list(iter_jsonl(out))
    assert {r["item"]: r["outcome"] for r in rows} == expected
    assert {r["annotator"] for r in rows} == {"ann"} and all(r["submissions"] == 1 for r in rows)
