"""The human-judging page over HTTP: sessions end to end, resume, the token, escaping, and concurrent annotators.

Requests go through Starlette's TestClient, except the concurrency test, which posts from threads to a real uvicorn
server on 127.0.0.1. Every post sends the form's own hidden fields (`hidden`), as a browser does.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Iterator
from html import unescape

import httpx
import pytest
from starlette.testclient import TestClient

from lessismore.annotate import build_items, candidate_side, store
from lessismore.annotate.app import create_app
from lessismore.records import iter_jsonl
from tests.unit.test_annotate_store import make_data

XSS = "<script>window.__xss = 1; alert(1)</script> and <img src=x onerror=alert(1)>"
TOKEN = "t0ken-for-the-tests-only"


def make_items(n_prompts: int = 4, xss: bool = False):
    prompts, responses = make_data(n_prompts, baselines=("base",), answer=XSS if xss else "answer")
    return build_items(prompts, responses, "ft", ["base"])[0]


def item_key(html: str) -> str:
    return re.search(r'name="item" value="([0-9a-f]+)"', html).group(1)


def hidden(html: str) -> dict[str, str]:
    """The form's hidden fields (the item key and its one-time submission id), as a browser would send them."""
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', html))


def message(html: str) -> str:
    """The message of a refusal page (error.html.j2), unescaped."""
    return unescape(re.search(r'id="error">([^<]*)<', html).group(1))


def progress(html: str) -> tuple[int, int]:
    k, n = re.search(r'id="progress">(\d+) of (\d+)<', html).groups()
    return int(k), int(n)


def client(app, name: str | None = None) -> TestClient:
    c = TestClient(app, base_url="http://127.0.0.1")
    if name:
        assert c.post("/", data={"name": name}).status_code == 200
    return c


def test_pairwise_and_absolute_sessions_end_to_end_with_resume(tmp_path):
    items = make_items(4)
    db, out = tmp_path / "h.sqlite", tmp_path / "human_judgments.jsonl"
    app = create_app(db, items, overlap=2, seed=7)
    by_key = {it.key: it for it in items}
    ann = client(app, "ann")
    assert "Compare two answers" in ann.get("/").text
    labels, expected = ["a", "b", "tie", "a"], {}
    for i, label in enumerate(labels):
        page = ann.get("/pairwise").text
        assert progress(page) == (i + 1, 4)
        key = item_key(page)
        cand, base = (a.text for a in by_key[key].answers)
        side = candidate_side("ann", key, 7)
        a_text = re.search(r'id="answer-a">([^<]*)<', page).group(1)
        assert a_text == (cand if side == "ab" else base)  # the seeded side is what is shown
        assert ann.post("/pairwise", data={**hidden(page), "label": label}, follow_redirects=False).status_code == 303
        expected[key] = (
            {"a": "win", "b": "loss", "tie": "tie"}[label]
            if side == "ab"
            else {"a": "loss", "b": "win", "tie": "tie"}[label]
        )  # noqa: E501
        if i == 1:  # resume: a fresh browser with the same name continues at item 3
            assert progress(client(app, "ann").get("/pairwise").text) == (3, 4)
    assert 'id="done"' in ann.get("/pairwise").text
    for grade in ("excellent", "fail", "pass", "pass", "fail", "excellent", "pass", "fail"):
        page = ann.get("/absolute").text
        key = item_key(page)
        ann.post("/absolute", data={**hidden(page), "label": grade})
        expected[key] = grade
    assert "All 8 grades done" in ann.get("/absolute").text
    assert store.export(db, out) == 12
    assert {r["item"]: r["outcome"] for r in iter_jsonl(out)} == expected


def test_bad_posts_are_refused_and_nothing_is_stored(tmp_path):
    items = make_items(3)
    db = tmp_path / "h.sqlite"
    app = create_app(db, items, overlap=1, seed=0, roster=["ann", "bob"])
    ann = client(app, "ann")
    form = hidden(ann.get("/pairwise").text)
    bad = ann.post("/pairwise", data={**form, "label": "excellent"})
    assert bad.status_code == 400 and "not one of" in message(bad.text) and 'href="/pairwise"' in bad.text
    stranger = ann.post("/pairwise", data={**form, "item": "f" * 16, "label": "a"})
    assert stranger.status_code == 400 and message(stranger.text).startswith("That item is not in your queue")
    no_sid = ann.post("/pairwise", data={"item": form["item"], "label": "a"})
    assert no_sid.status_code == 400 and "submission id" in message(no_sid.text)
    assert client(app).post("/", data={"name": "eve"}).status_code == 400  # not on the roster
    assert client(app).post("/", data={"name": "<b>x</b>"}).status_code == 400
    cross = ann.post("/pairwise", data={**form, "label": "a"}, headers={"origin": "http://evil.example"})
    assert cross.status_code == 403 and message(cross.text) == "cross-site submissions are refused"
    assert ann.get("/", headers={"host": "evil.example"}).status_code == 403  # DNS rebinding
    missing = ann.get("/ranking")
    assert missing.status_code == 404 and "the pages are /pairwise and /absolute" in message(missing.text)
    assert message(ann.get("/static/x.js").text) == "There is no file /static/x.js."
    assert message(ann.get("/a/b").text) == "There is no page at /a/b."
    put = ann.put("/pairwise", content=b"")
    assert put.status_code == 405 and message(put.text) == "/pairwise does not take a PUT request."
    assert 'href="/pairwise"' in put.text and "GET" in put.headers["allow"]
    assert store.latest(db) == []


def test_token_required_off_localhost(tmp_path):
    items = make_items(2)
    with pytest.raises(ValueError, match="--token"):
        create_app(tmp_path / "h.sqlite", items, host="0.0.0.0")
    with pytest.raises(ValueError, match="16 or more"):
        create_app(tmp_path / "h.sqlite", items, host="0.0.0.0", token="short")
    app = create_app(tmp_path / "h.sqlite", items, host="0.0.0.0", token=TOKEN)
    c = TestClient(app, base_url="http://annotate.lan")
    assert c.get("/").status_code == 403 and "a token is required" in message(c.get("/").text)
    assert c.get("/?token=wrong-token-wrong-token").status_code == 403
    assert c.post("/", data={"name": "ann"}).status_code == 403
    assert c.get(f"/?token={TOKEN}").status_code == 200  # once in the URL, then the cookie
    assert c.post("/", data={"name": "ann"}).status_code == 200
    assert "1 of 2" in c.get("/pairwise").text


def test_model_text_is_escaped_and_scripts_are_forbidden(tmp_path):
    app = create_app(tmp_path / "h.sqlite", make_items(2, xss=True), overlap=0)
    ann = client(app, "ann")
    for path in ("/pairwise", "/absolute"):
        resp = ann.get(path)
        assert "<script>window" not in resp.text and "<img src=x" not in resp.text
        assert "&lt;script&gt;window.__xss = 1; alert(1)&lt;/script&gt;" in resp.text
        assert "&lt;img src=x onerror=alert(1)&gt;" in resp.text
        assert "script-src 'self'" in resp.headers["content-security-policy"]
        assert "unsafe-inline" not in resp.headers["content-security-policy"]
        assert resp.text.count("<script") == 1  # only the static shortcut file


@contextlib.contextmanager
def serve_in_thread(app) -> Iterator[str]:
    """A real uvicorn server on 127.0.0.1 (a free port) in a thread; yields its base URL."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def test_concurrent_annotators_lose_nothing(tmp_path):
    items = make_items(10)  # 10 pairwise + 20 absolute items
    db, out = tmp_path / "h.sqlite", tmp_path / "human_judgments.jsonl"
    roster = [f"a{i}" for i in range(6)]
    app = create_app(db, items, overlap=4, seed=1, roster=roster)
    posted: dict[str, list[tuple[str, str]]] = {}
    errors: list[str] = []

    def annotate(name: str, base: str) -> None:
        with httpx.Client(base_url=base, follow_redirects=False, timeout=60) as c:
            c.post("/", data={"name": name})
            for kind, labels in (("pairwise", ("a", "b", "tie")), ("absolute", ("excellent", "pass", "fail"))):
                for i in range(100):
                    page = c.get(f"/{kind}").text
                    if 'id="done"' in page:
                        break
                    key = item_key(page)
                    for j, label in enumerate((labels[i % 3], labels[(i + 1) % 3])[: 1 + (i % 2)]):
                        if j:  # every other item: a changed mind, on the item shown again with a fresh form
                            page = c.get(f"/{kind}", params={"item": key}).text
                        r = c.post(f"/{kind}", data={**hidden(page), "label": label})
                        if r.status_code != 303:
                            errors.append(f"{name}: {r.status_code} {r.text}")
                        posted.setdefault(name, []).append((key, label))

    with serve_in_thread(app) as base:
        threads = [threading.Thread(target=annotate, args=(n, base)) for n in roster]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    assert errors == []
    n_posts = sum(len(v) for v in posted.values())
    with store.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM submissions").fetchone()[0] == n_posts
    latest = {(n, k): label for n, posts in posted.items() for k, label in posts}  # the last post per item
    assert store.export(db, out) == len(latest)
    assert {(r["annotator"], r["item"]): r["label"] for r in iter_jsonl(out)} == latest
    # every item judged; the overlap (4 pairwise + 4 absolute) by all six annotators
    assert {k for _, k in latest} == {it.key for it in items}
    per_item = {}
    for n, k in latest:
        per_item.setdefault(k, set()).add(n)
    assert sum(len(v) == 6 for v in per_item.values()) == 8
