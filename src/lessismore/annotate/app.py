"""The human-judging web page: blind pairwise and absolute grading, served by Starlette + uvicorn.

Sits between annotate/__init__.py (items, queues, sides) and annotate/store.py (SQLite); `lessismore annotate`
starts it. Each page is a plain HTML form (it works without script); static/annotate.js only adds the keyboard
shortcuts. Answers are untrusted model text: Jinja2 autoescapes everything, and a Content-Security-Policy allows
no inline script and no request to any other origin. Bound to 127.0.0.1 by default; bound anywhere else it refuses
to start without a token, which every request must then carry (?token= once, then an HttpOnly cookie).

Each form carries a one-time submission id, so a retried POST is recorded once; an item outside the overlap set is
claimed by whoever posts first (the others are moved on to their next item with a notice); `/{kind}?item=KEY`
shows an item again to change the answer. A form body must be urlencoded, small, UTF-8 and hold only the page's own
fields. Every refusal is the usual page with the reason and a link onward, never bare text.

SQLite is called on the event loop, not in worker threads. Each call takes under a millisecond (WAL, with one
connection held open while serving), the page is the file's only writer, and WAL readers never wait for a writer,
so no call waits on a lock. In worker threads the same calls waited for the GIL: a post took 52 ms at the median
under 20 annotators, against 1.3 ms here (#7 load test).
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from lessismore.annotate import GRADES, KINDS, Item, candidate_side, queue, seeded_order, store

HERE = Path(__file__).parent
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
NAME = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")
TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,}$")  # URL- and cookie-safe, as secrets.token_urlsafe() makes
SID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")  # a form's submission id: secrets.token_urlsafe(16) is 22 characters
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
STATIC = {"annotate.js": "text/javascript", "annotate.css": "text/css"}
FORM_TYPE = "application/x-www-form-urlencoded"  # what an HTML form without enctype sends
# A judging form is under 200 bytes (item key, label, submission id), the name form under 100. 64 KiB is far above
# anything the page sends, yet it bounds what one request can make the server read and hold: a 100 MB body was
# read whole before. A Content-Length over it is refused before any of the body is read.
MAX_BODY = 64 * 1024  # bytes
JUDGE_FIELDS = ("item", "label", "sid")
NOTICES = {
    "taken": "Another annotator judged that item first, so your answer to it was not recorded. Here is your next one.",
    "again": "You judged this item before: a new answer replaces the old one in the export.",
}


class Refusal(Exception):
    """A request the page will not act on: answered with `status` and the message, on the page, with a link on."""

    def __init__(self, status: int, message: str, next_url: str | None = None) -> None:
        super().__init__(message)
        self.status, self.next_url = status, next_url


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve beyond this machine without a token.

    >>> check_bind("127.0.0.1", None)
    >>> check_bind("0.0.0.0", None)
    Traceback (most recent call last):
    ValueError: binding to '0.0.0.0' exposes the page beyond this machine: pass --token (a long random string)
    """
    if host not in LOCAL_HOSTS and not token:
        raise ValueError(
            f"binding to {host!r} exposes the page beyond this machine: pass --token (a long random string)"
        )
    if token is not None and not TOKEN.match(token):
        raise ValueError(
            "the token must be 16 or more of A-Z a-z 0-9 _ - "
            "(e.g. python -c 'import secrets; print(secrets.token_urlsafe())')"
        )


def create_app(
    db_path: str | Path,
    items: Sequence[Item],
    *,
    overlap: int = 10,
    seed: int = 0,
    roster: Sequence[str] = (),
    host: str = "127.0.0.1",
    token: str | None = None,
) -> Starlette:
    """The page over `items`; submissions go to `db_path`. `roster`: fixed annotator names (empty: anyone)."""
    from jinja2 import Environment, FileSystemLoader

    check_bind(host, token)
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True)
    by_kind = {k: {it.key: it for it in items if it.kind == k} for k in KINDS}
    keys_of = {k: frozenset(by_kind[k]) for k in KINDS}  # the same object each request: queue() remembers it
    shared = {k: set(seeded_order(keys_of[k], seed)[:overlap]) for k in KINDS}  # judged by all: never claimed
    store.add_items(db_path, items)

    def page(template: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        return HTMLResponse(env.get_template(template).render(**ctx), status_code=status)

    def annotator_of(request: Request) -> str | None:
        name = request.cookies.get("annotator", "")
        return name if NAME.match(name) and (not roster or name in roster) else None

    def refused(request: Request, status: int, message: str, next_url: str | None = None) -> HTMLResponse:
        name, kind = annotator_of(request), request.path_params.get("kind")
        next_url = next_url or (f"/{kind}" if name and kind in KINDS else "/")
        return page("error.html.j2", status, message=message, name=name, next_url=next_url, next_label=_go(next_url))

    async def on_refusal(request: Request, exc: Exception) -> Response:
        if isinstance(exc, Refusal):
            return refused(request, exc.status, str(exc), exc.next_url)
        assert isinstance(exc, HTTPException)
        path = request.url.path
        explain = {404: f"There is no page at {path}.", 405: f"{path} does not take a {request.method} request."}
        resp = refused(request, exc.status_code, explain.get(exc.status_code, str(exc.detail)))
        resp.headers.update(exc.headers or {})  # e.g. 405's Allow
        return resp

    def todo(kind: str, name: str) -> tuple[list[str], set[str], set[str]]:
        """`name`'s queue, the items they judged, and the items outside the overlap that others claimed."""
        done, claimed = store.standing(db_path, kind, name)  # on the loop: see the module docstring
        taken = set() if roster else claimed - done - shared[kind]
        keys = queue(keys_of[kind], name, overlap=overlap, seed=seed, roster=roster, taken_by_others=taken)
        return keys, done, taken

    async def home(request: Request) -> Response:
        if request.method == "POST":
            name = (await _form(request, ("name",))).get("name", "").strip()
            if not NAME.match(name) or (roster and name not in roster):
                return page(
                    "home.html.j2",
                    400,
                    error="Use 1-40 letters, digits, '.', '_' or '-'"
                    + (f" from the roster: {', '.join(roster)}" if roster else ""),
                    name=None,
                )
            resp = RedirectResponse("/", status_code=303)
            resp.set_cookie("annotator", name, httponly=True, samesite="strict")
            return resp
        name = annotator_of(request)
        counts = {k: (len((q := todo(k, name))[0]), len(set(q[0]) & q[1])) for k in KINDS} if name else {}
        return page("home.html.j2", name=name, counts=counts, roster=roster)

    async def judge(request: Request) -> Response:
        kind = request.path_params["kind"]
        if kind not in KINDS:
            raise Refusal(404, f"There is no page /{kind}: the pages are /pairwise and /absolute.", "/")
        name = annotator_of(request)
        if name is None:
            return RedirectResponse("/", status_code=303)
        if request.method == "POST":
            return await post(request, kind, name)
        keys, done, _ = todo(kind, name)
        notice = NOTICES.get(request.query_params.get("notice", ""))
        if (key := request.query_params.get("item")) is not None:  # shown again, to change the answer
            if key not in keys:
                raise Refusal(400, "That item is not in your queue (another annotator may have judged it first).")
            k, notice = keys.index(key) + 1, notice or (NOTICES["again"] if key in done else None)
        elif pending := [k for k in keys if k not in done]:
            key, k = pending[0], len(keys) - len(pending) + 1
        else:
            return page("done.html.j2", kind=kind, name=name, total=len(keys), notice=notice)
        item = by_kind[kind][key]
        ctx = {"name": name, "item": item, "k": k, "n": len(keys), "kind": kind, "notice": notice}
        ctx["sid"] = secrets.token_urlsafe(16)  # one per rendered form: a retried POST of it is recorded once
        if kind == "absolute":
            return page("absolute.html.j2", answer=item.answers[0].text, grades=GRADES, **ctx)
        cand, base = (a.text for a in item.answers)
        first, second = (cand, base) if candidate_side(name, item.key, seed) == "ab" else (base, cand)
        return page("pairwise.html.j2", answer_a=first, answer_b=second, **ctx)

    async def post(request: Request, kind: str, name: str) -> Response:
        form = await _form(request, JUDGE_FIELDS)
        key, label, sid = (form.get(f, "") for f in JUDGE_FIELDS)
        if not SID.match(sid):
            raise Refusal(400, "The form has no valid submission id (sid): reload the page and answer again.")
        keys, _, taken = todo(kind, name)
        if key in taken:
            return RedirectResponse(f"/{kind}?notice=taken", status_code=303)
        if key not in keys:
            raise Refusal(400, "That item is not in your queue: your answer was not recorded.")
        shown = candidate_side(name, key, seed) if kind == "pairwise" else ""
        claim = not roster and key not in shared[kind]
        try:
            outcome = store.submit(db_path, name, kind, key, shown, label, sid=sid, claim=claim)
        except ValueError as err:
            raise Refusal(400, f"Your answer was not recorded: {err}.") from err
        if outcome == "taken":  # another annotator's claim won the race between our check and our insert
            return RedirectResponse(f"/{kind}?notice=taken", status_code=303)
        if outcome == "reused":
            raise Refusal(
                409,
                "This form was already sent with a different answer, which is the one recorded. "
                "To change it, open the item again.",
                f"/{kind}?item={key}",
            )
        return RedirectResponse(f"/{kind}", status_code=303)  # recorded now, or before ("replayed")

    async def static(request: Request) -> Response:
        fname = request.path_params["name"]
        if fname not in STATIC:
            raise Refusal(404, f"There is no file /static/{fname}.", "/")
        return Response((HERE / "static" / fname).read_bytes(), media_type=STATIC[fname])

    app = Starlette(
        routes=[
            Route("/", home, methods=["GET", "POST"]),
            Route("/static/{name}", static),
            Route("/favicon.ico", lambda request: Response(status_code=204)),
            Route("/{kind}", judge, methods=["GET", "POST"]),
        ],
        exception_handlers={Refusal: on_refusal, HTTPException: on_refusal},
        lifespan=_keep_open(db_path),
    )

    def forbidden(message: str) -> Response:
        return page("error.html.j2", 403, message=message, name=None, next_url="/", next_label=_go("/"))

    app.add_middleware(_Guard, token=token, local=host in LOCAL_HOSTS, forbidden=forbidden)  # type: ignore[arg-type]
    return app


def _keep_open(db_path: str | Path) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    """Hold one connection open while serving: when the last connection to a WAL file closes, SQLite checkpoints
    and deletes the WAL, and the next request makes it again (a submission took 2.4 ms so, 1.0 ms with this)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        with store.connect(db_path) as conn:
            conn.execute("SELECT 1 FROM items LIMIT 1").fetchall()  # a connection opens the file when first used
            yield

    return lifespan


def _go(url: str) -> str:
    """The words of the link on a refusal page."""
    if url == "/":
        return "Back to the start page"
    return "Open the item again" if "?item=" in url else "Go on to your next item"


async def _form(request: Request, fields: Sequence[str]) -> dict[str, str]:
    """The urlencoded form body, refused unless it is the page's own: its type (415), size (413), fields and UTF-8.

    Parsed here: Starlette's own parser needs python-multipart.
    """
    mime, _, params = request.headers.get("content-type", "").partition(";")
    charset = params.strip().lower().removeprefix("charset=").strip('"') if "charset=" in params.lower() else "utf-8"
    if mime.strip().lower() != FORM_TYPE or charset != "utf-8":
        got = request.headers.get("content-type") or "none"
        raise Refusal(415, f"Send the form as {FORM_TYPE} in UTF-8 (this request's Content-Type: {got[:80]}).")
    too_big = Refusal(413, f"The form is larger than {MAX_BODY // 1024} KiB: this page's forms are far smaller.")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise too_big  # before reading any of it
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise too_big
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=bool(body), errors="strict")
    except UnicodeDecodeError as err:
        raise Refusal(400, "The form is not valid UTF-8: send it from the page itself.") from err
    except ValueError as err:
        raise Refusal(400, f"The form is not urlencoded name=value pairs ({str(err)[:80]}).") from err
    names = [n for n, _ in pairs]
    if unknown := [n for n in names if n not in fields]:
        shown = ", ".join(repr(n[:40]) for n in unknown[:5])
        raise Refusal(400, f"Unknown form field(s) {shown}: this form sends only {', '.join(fields)}.")
    if twice := sorted({n for n in names if names.count(n) > 1}):
        raise Refusal(400, f"Form field(s) {', '.join(twice)} sent more than once: send each once.")
    return dict(pairs)


class _Guard:
    """Security headers on every response; a token on every request when set; local names only; no cross-site POST."""

    def __init__(self, app: Any, token: str | None, local: bool, forbidden: Callable[[str], Response]) -> None:
        self.app, self.token, self.local, self.forbidden = app, token, local, forbidden

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request = Request(scope)
        given = request.query_params.get("token")
        denied = self._denied(request, given)

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                    (b"cache-control", b"no-store"),
                ]
                if self.token and given and not denied:
                    cookie = f"token={self.token}; HttpOnly; SameSite=Strict; Path=/"
                    headers.append((b"set-cookie", cookie.encode()))
                message = {**message, "headers": headers}
            await send(message)

        if denied:
            return await self.forbidden(denied)(scope, receive, send_with_headers)
        await self.app(scope, receive, send_with_headers)

    def _denied(self, request: Request, given: str | None) -> str:
        host = request.headers.get("host", "")
        if self.local and host.rsplit(":", 1)[0].strip("[]") not in LOCAL_HOSTS:  # a DNS-rebinding page
            return f"this page answers only to {', '.join(LOCAL_HOSTS)}, not {host!r}"
        if self.token:
            offered = given or request.cookies.get("token", "")
            if not hmac.compare_digest(offered.encode(), self.token.encode()):
                return "a token is required: open the link with ?token=... that `lessismore annotate` printed"
        origin = request.headers.get("origin")
        # same-origin forms send Origin http(s)://<host>; "null" (a sandboxed frame) or another site is refused
        if request.method == "POST" and origin and origin.split("://")[-1] != host:
            return "cross-site submissions are refused"
        return ""


def serve(
    db_path: str | Path,
    items: Sequence[Item],
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
    **options: Any,
) -> None:
    """Run the page with uvicorn until interrupted (`lessismore annotate`); `options` go to `create_app`."""
    import uvicorn

    app = create_app(db_path, items, host=host, token=token, **options)  # refuses a bare non-local bind first
    uvicorn.run(app, host=host, port=port, log_level="warning")
