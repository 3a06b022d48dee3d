"""The human-judging web page: blind pairwise and absolute grading, served by Starlette + uvicorn.

Sits between annotate/__init__.py (items, queues, sides) and annotate/store.py (SQLite); `lessismore annotate`
starts it. Each page is a plain HTML form (it works without script); static/annotate.js only adds the keyboard
shortcuts. Answers are untrusted model text: Jinja2 autoescapes everything, and a Content-Security-Policy allows
no inline script and no request to any other origin. Bound to 127.0.0.1 by default; bound anywhere else it refuses
to start without a token, which every request must then carry (?token= once, then an HttpOnly cookie).
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from lessismore.annotate import GRADES, KINDS, Item, candidate_side, queue, store

HERE = Path(__file__).parent
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
NAME = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")
TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,}$")  # URL- and cookie-safe, as secrets.token_urlsafe() makes
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
STATIC = {"annotate.js": "text/javascript", "annotate.css": "text/css"}


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
    store.add_items(db_path, items)

    def page(template: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        return HTMLResponse(env.get_template(template).render(**ctx), status_code=status)

    def annotator_of(request: Request) -> str | None:
        name = request.cookies.get("annotator", "")
        return name if NAME.match(name) and (not roster or name in roster) else None

    async def todo(kind: str, name: str) -> tuple[list[str], set[str]]:
        done = await run_in_threadpool(store.judged, db_path, kind)  # SQLite blocks: keep it off the event loop
        others = set().union(*(v for k, v in done.items() if k != name)) if not roster else set()
        keys = queue(by_kind[kind], name, overlap=overlap, seed=seed, roster=roster, taken_by_others=others)
        return keys, done.get(name, set())

    async def home(request: Request) -> Response:
        if request.method == "POST":
            name = (await _form(request)).get("name", "").strip()
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
        counts = {k: (len((q := await todo(k, name))[0]), len(set(q[0]) & q[1])) for k in KINDS} if name else {}
        return page("home.html.j2", name=name, counts=counts, roster=roster)

    async def judge(request: Request) -> Response:
        kind = request.path_params["kind"]
        if kind not in KINDS:
            return PlainTextResponse("no such page", status_code=404)
        name = annotator_of(request)
        if name is None:
            return RedirectResponse("/", status_code=303)
        keys, done = await todo(kind, name)
        if request.method == "POST":
            form = await _form(request)
            key, label = form.get("item", ""), form.get("label", "")
            if key not in keys:
                return PlainTextResponse("that item is not in your queue", status_code=400)
            shown = candidate_side(name, key, seed) if kind == "pairwise" else ""
            try:
                await run_in_threadpool(store.submit, db_path, name, kind, key, shown, label)
            except ValueError as err:
                return PlainTextResponse(str(err), status_code=400)
            return RedirectResponse(f"/{kind}", status_code=303)
        pending = [k for k in keys if k not in done]
        if not pending:
            return page("done.html.j2", kind=kind, name=name, total=len(keys))
        item = by_kind[kind][pending[0]]
        ctx = {"name": name, "item": item, "k": len(keys) - len(pending) + 1, "n": len(keys), "kind": kind}
        if kind == "absolute":
            return page("absolute.html.j2", answer=item.answers[0].text, grades=GRADES, **ctx)
        cand, base = (a.text for a in item.answers)
        first, second = (cand, base) if candidate_side(name, item.key, seed) == "ab" else (base, cand)
        return page("pairwise.html.j2", answer_a=first, answer_b=second, **ctx)

    async def static(request: Request) -> Response:
        fname = request.path_params["name"]
        if fname not in STATIC:
            return PlainTextResponse("not found", status_code=404)
        return Response((HERE / "static" / fname).read_bytes(), media_type=STATIC[fname])

    app = Starlette(
        routes=[
            Route("/", home, methods=["GET", "POST"]),
            Route("/static/{name}", static),
            Route("/favicon.ico", lambda request: Response(status_code=204)),
            Route("/{kind}", judge, methods=["GET", "POST"]),
        ]
    )
    app.add_middleware(_Guard, token=token, local=host in LOCAL_HOSTS)  # type: ignore[arg-type]
    return app


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form body (parsed here: Starlette's own parser needs python-multipart)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}


class _Guard:
    """Security headers on every response; a token on every request when set; local names only; no cross-site POST."""

    def __init__(self, app: Any, token: str | None, local: bool) -> None:
        self.app, self.token, self.local = app, token, local

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
            return await PlainTextResponse(denied, status_code=403)(scope, receive, send_with_headers)
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
