"""The annotate page under load and abuse, against real uvicorn servers on 127.0.0.1 (#7 load test).

A non-overlap item raced by many annotators gets exactly one judge, who can still change their mind; a POST retried
with the same submission id (also after a server restart) is one row; oversized bodies get 413, other content types
415, unknown or non-UTF-8 fields 400, each on the usual HTML page with the reason and a link on.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
from collections.abc import Iterator
from urllib.parse import urlencode, urlsplit

import httpx

from lessismore.annotate import seeded_order, store
from lessismore.annotate.app import MAX_BODY, NOTICES, create_app
from tests.integration.test_annotate_app import hidden, item_key, make_items, message, serve_in_thread

FORM = {"content-type": "application/x-www-form-urlencoded"}


def signed_in(base: str, name: str) -> httpx.Client:
    """A client with the annotator cookie set, not following redirects (the tests read where they point)."""
    c = httpx.Client(base_url=base, follow_redirects=False, timeout=30)
    assert c.post("/", data={"name": name}).status_code == 303
    return c


@contextlib.contextmanager
def one_annotator(base: str, name: str = "ann") -> Iterator[httpx.Client]:
    c = signed_in(base, name)
    try:
        yield c
    finally:
        c.close()


def rows(db, item: str | None = None) -> list[tuple[str, str, str]]:
    with store.connect(db) as conn:
        query = "SELECT annotator, label, sid FROM submissions" + (" WHERE item = ?" if item else "") + " ORDER BY id"
        return conn.execute(query, (item,) if item else ()).fetchall()


def race(clients: dict[str, httpx.Client], forms: dict[str, dict[str, str]]) -> dict[str, httpx.Response]:
    """Every client posts its form to /pairwise at the same moment (a barrier, one thread each)."""
    start, answers = threading.Barrier(len(clients)), {}

    def post(name: str) -> None:
        start.wait()
        answers[name] = clients[name].post("/pairwise", data=forms[name])

    threads = [threading.Thread(target=post, args=(n,)) for n in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return answers


def test_many_annotators_racing_for_one_item_leave_one_judge_who_can_change_their_mind(tmp_path):
    items, db = make_items(4), tmp_path / "h.sqlite"  # 4 pairwise items, overlap 1: 3 are first come
    app = create_app(db, items, overlap=1, seed=3)
    names = [f"r{i}" for i in range(12)]
    contested = seeded_order([it.key for it in items if it.kind == "pairwise"], 3)[1:]
    with serve_in_thread(app) as base:
        clients = {n: signed_in(base, n) for n in names}
        for key in contested:
            forms = {n: hidden(c.get("/pairwise", params={"item": key}).text) for n, c in clients.items()}
            assert all(f["item"] == key for f in forms.values())  # unclaimed: in everyone's queue
            answers = race(clients, {n: {**f, "label": "a"} for n, f in forms.items()})
            where = {n: (r.status_code, r.headers.get("location")) for n, r in answers.items()}
            winners = [n for n, w in where.items() if w == (303, "/pairwise")]
            assert len(winners) == 1, where
            assert all(w == (303, "/pairwise?notice=taken") for n, w in where.items() if n not in winners), where
            assert [r[0] for r in rows(db, key)] == winners
            loser = clients[next(n for n in names if n not in winners)]
            moved_on = loser.get("/pairwise?notice=taken").text  # where the loser's browser goes next
            assert NOTICES["taken"] in moved_on and item_key(moved_on) != key
            again = loser.post("/pairwise", data={**forms[loser.cookies["annotator"]], "label": "b"})
            assert again.headers["location"] == "/pairwise?notice=taken"  # a late retry is moved on too
            shown = loser.get("/pairwise", params={"item": key})
            assert shown.status_code == 400 and message(shown.text).startswith("That item is not in your queue")
            assert 'href="/pairwise"' in shown.text
            # the winner changes their mind on the item shown again, with a fresh form
            winner = clients[winners[0]]
            page = winner.get("/pairwise", params={"item": key}).text
            assert NOTICES["again"] in page and hidden(page)["sid"] != forms[winners[0]]["sid"]
            assert winner.post("/pairwise", data={**hidden(page), "label": "tie"}).headers["location"] == "/pairwise"
            assert [r[:2] for r in rows(db, key)] == [(winners[0], "a"), (winners[0], "tie")]
        for c in clients.values():
            c.close()
    latest = {r["item"]: r for r in store.latest(db)}
    assert all(latest[k]["label"] == "tie" and latest[k]["submissions"] == 2 for k in contested)


def test_a_retried_post_is_recorded_once_even_after_a_restart(tmp_path):
    items, db = make_items(2), tmp_path / "h.sqlite"
    with serve_in_thread(create_app(db, items, overlap=0)) as base, one_annotator(base) as ann:
        form = {**hidden(ann.get("/absolute").text), "label": "pass"}
        first, retry = (ann.post("/absolute", data=form) for _ in range(2))
        assert (first.status_code, retry.status_code) == (303, 303)
        assert first.headers["location"] == retry.headers["location"] == "/absolute"
        cookies = dict(ann.cookies)
    # the server dies before its 303 arrives; the browser re-sends the same form to the restarted one
    with serve_in_thread(create_app(db, items, overlap=0)) as base:
        with httpx.Client(base_url=base, cookies=cookies, follow_redirects=False) as ann:
            assert ann.post("/absolute", data=form).headers["location"] == "/absolute"
            changed = ann.post("/absolute", data={**form, "label": "fail"})  # the same form, another answer
            assert changed.status_code == 409 and "already sent with a different answer" in message(changed.text)
            assert f'href="/absolute?item={form["item"]}"' in changed.text
    assert rows(db) == [("ann", "pass", form["sid"])]


def raw_post(base: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str]:
    """POST over a bare socket (httpx would not let a body lie about its length); the status and the page."""
    url = urlsplit(base)
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        head = {"host": url.netloc, "cookie": "annotator=ann", **headers}
        sock.sendall(f"POST {path} HTTP/1.1\r\n".encode() + "".join(f"{k}: {v}\r\n" for k, v in head.items()).encode())
        sock.sendall(b"\r\n" + body)
        resp = http.client.HTTPResponse(sock)
        resp.begin()
        return resp.status, resp.read().decode()


def test_bodies_over_the_limit_get_413_on_the_page(tmp_path):
    items, db = make_items(2), tmp_path / "h.sqlite"
    with serve_in_thread(create_app(db, items, overlap=0)) as base:
        declared = raw_post(base, "/pairwise", {**FORM, "content-length": str(100 * 2**20)}, b"item=" + b"f" * 4096)
        chunk = b"label=" + b"a" * MAX_BODY  # sent chunked: no length declared, so the limit counts what arrives
        chunked = raw_post(
            base, "/pairwise", {**FORM, "transfer-encoding": "chunked"}, b"%x\r\n%s\r\n0\r\n\r\n" % (len(chunk), chunk)
        )
        home = raw_post(base, "/", {**FORM, "content-length": str(MAX_BODY + 1)}, b"name=ann")
    for status, page in (declared, chunked, home):
        assert status == 413 and message(page).startswith("The form is larger than 64 KiB")
    assert 'href="/pairwise"' in declared[1] and 'href="/"' in home[1]
    assert rows(db) == []


def test_other_content_types_get_415_on_the_page(tmp_path):
    items, db = make_items(2), tmp_path / "h.sqlite"
    with serve_in_thread(create_app(db, items, overlap=0)) as base, one_annotator(base) as ann:
        body = urlencode({**hidden(ann.get("/pairwise").text), "label": "a"})
        latin1 = FORM["content-type"] + "; charset=latin-1"
        for ctype in ("text/plain", "multipart/form-data; boundary=x", "application/json", "", latin1):
            resp = ann.post("/pairwise", content=body, headers={"content-type": ctype})
            assert resp.status_code == 415, ctype
            assert message(resp.text).startswith("Send the form as application/x-www-form-urlencoded in UTF-8")
            assert 'href="/pairwise"' in resp.text
        utf8 = ann.post("/pairwise", content=body, headers={"content-type": FORM["content-type"] + "; charset=UTF-8"})
        assert utf8.headers["location"] == "/pairwise"
    assert len(rows(db)) == 1


def test_unknown_or_non_utf8_fields_get_400_on_the_page(tmp_path):
    items, db = make_items(2), tmp_path / "h.sqlite"
    with serve_in_thread(create_app(db, items, overlap=0)) as base, one_annotator(base) as ann:
        form = urlencode({**hidden(ann.get("/pairwise").text), "label": "a"}).encode()
        cases = {
            form + b"&junk=%00%E2%80%AE": "Unknown form field(s) 'junk': this form sends only item, label, sid.",
            form + b"&note=hello&x=": "Unknown form field(s) 'note', 'x': this form sends only item, label, sid.",
            form + b"&junk=%FF%FE%00": "The form is not valid UTF-8: send it from the page itself.",
            form.replace(b"label=a", b"label=%FF"): "The form is not valid UTF-8: send it from the page itself.",
            form.replace(b"label=a", b"label=\xff"): "The form is not valid UTF-8: send it from the page itself.",
            form + b"&%C3%28=x": "The form is not valid UTF-8: send it from the page itself.",
            form + b"&label=b": "Form field(s) label sent more than once: send each once.",
        }
        for body, expected in cases.items():
            resp = ann.post("/pairwise", content=body, headers=FORM)
            assert (resp.status_code, message(resp.text)) == (400, expected), body
            assert 'href="/pairwise">Go on to your next item</a>' in resp.text and "<header>" in resp.text
    assert rows(db) == []
