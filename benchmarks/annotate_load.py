"""Benchmark: the annotate page under 20 concurrent annotators, its server killed (-9) and restarted mid-run.

Serves `lessismore annotate`'s page (annotate/app.py on uvicorn) in a subprocess over synthetic items (pairwise and
absolute, as the integration tests build them) and drives it with httpx async clients that speak the page's own
form API: GET the page, read the form's hidden fields, POST one of its buttons. Now and then an annotator changes
their mind on an item they were acknowledged on (the item shown again), or opens the item another annotator is
looking at and races them for it. A POST whose answer never came is sent again with the same form (the same
submission id), and 3% of answered posts are sent twice, as a client does when an answer is lost on the way.
After an unmeasured warm-up, two runs of --submissions acknowledged submissions, each on a fresh SQLite file: the
anchor without a kill, then one whose server is killed with SIGKILL halfway and restarted on the same file. The
second run's database is then checked: lost = acknowledged submissions missing from it, double-claimed = items
outside the overlap set with rows from more than one annotator, duplicate rows = rows sharing a submission id.
Goal on 2 cores: 0, 0, 0 and p99 request latency <= 250 ms. The line before the last gives p99 against that goal,
and p99 and throughput with the kill against the anchor's.
Last line: `annotate_load: N acknowledged, lost L, double-claimed D, duplicate rows R, p99 P ms, peak RSS M MiB`.

    python benchmarks/annotate_load.py [--annotators 20] [--submissions 3000] [--prompts 1500]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import math
import random
import re
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

GOAL_P99_MS = 250.0
OVERLAP, SEED = 10, 0  # 10 items of each kind go to everyone; the rest is first come, first served
REVOTE, SNIPE = 0.05, 0.10  # the share of steps that change a mind, or race another annotator for their item
RESEND = 0.03  # the share of answered posts sent once more, as a client does when the answer was lost on the way
HIDDEN = re.compile(r'<input type="hidden" name="(\w+)" value="([^"]*)">')
LABEL = re.compile(r'name="label" value="(\w+)"')


def build(n_prompts: int) -> list:
    """n prompts, each answered by "ft" and "base": n pairwise and 2n absolute items (as the tests build them)."""
    from lessismore.annotate import build_items
    from lessismore.records import Origin, Prompt, Response

    prompts = [
        Prompt(f"Question {i}: how do I keep basil alive?", "test", Origin("b", "b", str(i))) for i in range(n_prompts)
    ]
    text = "Water it when the top of the soil is dry, give it six hours of sun, and pinch the flowers off. " * 4
    responses = [
        Response(p.id, m, f"sha-{m}", f"{m} {i}: {text}", {}) for i, p in enumerate(prompts) for m in ("ft", "base")
    ]
    return build_items(prompts, responses, "ft", ["base"])[0]


def serve(db: str, port: int, n_prompts: int) -> None:
    """The server process (`--serve`): the page over the same items, on 127.0.0.1:port."""
    import uvicorn

    from lessismore.annotate.app import create_app

    uvicorn.run(create_app(db, build(n_prompts), overlap=OVERLAP, seed=SEED), port=port, log_level="warning")


# ---------------------------------------------------------------- the server, in a process that can be killed
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, db: Path, port: int, n_prompts: int, log: Path) -> None:
        self.args = [sys.executable, __file__, "--serve", str(db), str(port), str(n_prompts)]
        self.url, self.log, self.peak_kib, self.proc = f"http://127.0.0.1:{port}", log, 0, None

    def start(self) -> float:
        """Start and wait until it answers; returns the seconds that took."""
        import httpx

        t0 = time.perf_counter()
        self.proc = subprocess.Popen(self.args, stdout=self.log.open("ab"), stderr=subprocess.STDOUT)
        while time.perf_counter() - t0 < 60:
            assert self.proc.poll() is None, f"the server exited: see {self.log}"
            try:
                if httpx.get(self.url + "/favicon.ico", timeout=1).status_code == 204:
                    return time.perf_counter() - t0
            except httpx.TransportError:
                time.sleep(0.05)
        raise TimeoutError(f"the server did not answer within 60 s: see {self.log}")

    def stop(self, kill: bool) -> None:
        """SIGKILL (kill -9) or SIGTERM; the peak RSS (VmHWM) is read just before."""
        if self.proc.poll() is None:
            status = Path(f"/proc/{self.proc.pid}/status").read_text()
            self.peak_kib = max(self.peak_kib, int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)))
            self.proc.kill() if kill else self.proc.terminate()
        self.proc.wait(30)


# ---------------------------------------------------------------- the annotators
@dataclass
class Run:
    target: int
    acked: dict = field(default_factory=dict)  # sid -> (annotator, item, label), answered 303 to the next item
    latencies: list = field(default_factory=list)  # seconds, every request that got an answer
    outcomes: Counter = field(default_factory=Counter)
    showing: dict = field(default_factory=dict)  # (kind, annotator) -> the item their page shows now
    resent: set = field(default_factory=set)  # submission ids of posts sent again after no answer
    killed_at: str = ""  # when the server was killed, UTC, as the store writes times


async def request(c, run: Run, method: str, url: str, **kw):
    """One request, re-sent as it was (same form, same submission id) until the server answers; and how many tries."""
    import httpx

    first_try = time.perf_counter()
    for tries in itertools.count(1):
        t0 = time.perf_counter()
        try:
            resp = await c.request(method, url, **kw)
        except httpx.TransportError as err:  # refused, reset, or no answer: the server is down or was killed
            if t0 - first_try > 60:
                raise RuntimeError(f"no answer to {method} {url} for 60 s: see the server's log") from err
            run.outcomes[f"{method} sent again"] += 1
            await asyncio.sleep(0.05)
            continue
        run.latencies.append(time.perf_counter() - t0)
        return resp, tries


async def annotator(c, name: str, run: Run, rng: random.Random) -> None:
    async with c:
        await request(c, run, "POST", "/", data={"name": name})
        mine: list[tuple[str, str]] = []  # (kind, item) acknowledged
        step, finished = 0, set()
        while len(run.acked) < run.target and len(finished) < 2:
            kind, roll, step = ("pairwise", "absolute")[step % 2], rng.random(), step + 1
            others = [k for (kd, n), k in run.showing.items() if kd == kind and n != name]
            if roll < REVOTE and mine:
                kind, key = rng.choice(mine)
                resp, _ = await request(c, run, "GET", f"/{kind}", params={"item": key})
                run.outcomes["revote shown" if resp.status_code == 200 else f"revote refused {resp.status_code}"] += 1
            elif roll < REVOTE + SNIPE and others:
                resp, _ = await request(c, run, "GET", f"/{kind}", params={"item": rng.choice(others)})
                run.outcomes["race joined" if resp.status_code == 200 else "race too late (400)"] += 1
                if resp.status_code == 400:  # the other annotator's post came first: the item is theirs
                    continue
            else:
                resp, _ = await request(c, run, "GET", f"/{kind}")
            if 'id="done"' in resp.text:
                finished.add(kind)
            if resp.status_code != 200 or 'id="done"' in resp.text:
                run.outcomes[f"GET {resp.status_code}" if 'id="done"' not in resp.text else "done"] += 1
                continue
            form = dict(HIDDEN.findall(resp.text)) | {"label": rng.choice(LABEL.findall(resp.text))}
            run.showing[kind, name] = form["item"]
            resp, tries = await request(c, run, "POST", f"/{kind}", data=form)
            del run.showing[kind, name]
            if tries > 1:
                run.resent.add(form["sid"])
            where = resp.headers.get("location", "")
            if resp.status_code == 303 and where == f"/{kind}":
                run.acked[form["sid"]] = (name, form["item"], form["label"])
                mine.append((kind, form["item"]))
            run.outcomes["moved on" if where.endswith("notice=taken") else f"POST {resp.status_code}"] += 1
            if rng.random() < RESEND:  # the same form again: it must be answered as the first was, and stored once
                again, _ = await request(c, run, "POST", f"/{kind}", data=form)
                same = (again.status_code, again.headers.get("location", "")) == (resp.status_code, where)
                run.outcomes["sent twice, answered alike" if same else "sent twice, answered otherwise"] += 1


async def drive(server: Server, n: int, target: int, kill: bool) -> tuple[Run, float, float]:
    """n annotators until `target` acknowledged; with `kill`, SIGKILL the server halfway and restart it."""
    import httpx

    run, downtime = Run(target), 0.0
    # made before any request: a client's setup (its SSL context, 20 ms) would otherwise count in others' latency
    clients = [httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=10) for _ in range(n)]
    tasks = [asyncio.create_task(annotator(c, f"a{i:02}", run, random.Random(i))) for i, c in enumerate(clients)]
    t0 = time.perf_counter()
    if kill:
        while len(run.acked) < target // 2 and not all(t.done() for t in tasks):
            await asyncio.sleep(0.01)
        server.stop(kill=True)
        t_kill, run.killed_at = time.perf_counter(), datetime.now(UTC).isoformat(timespec="milliseconds")
        await asyncio.to_thread(server.start)
        downtime = time.perf_counter() - t_kill
    await asyncio.gather(*tasks)
    return run, time.perf_counter() - t0, downtime


# ---------------------------------------------------------------- what the database holds
def check(db: Path, run: Run, items: list) -> dict[str, int]:
    from lessismore.annotate import KINDS, seeded_order

    shared = {k for kind in KINDS for k in seeded_order([i.key for i in items if i.kind == kind], SEED)[:OVERLAP]}
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT sid, annotator, item, label, time FROM submissions").fetchall()
    stored = {sid: (a, item, label) for sid, a, item, label, _ in rows}
    before_kill = {sid for sid, *_, t in rows if run.killed_at and t < run.killed_at}
    judges: dict[str, set[str]] = {}
    for _, a, item, *_ in rows:
        judges.setdefault(item, set()).add(a)
    return {
        "lost": sum(stored.get(sid) != what for sid, what in run.acked.items()),
        "double": sum(len(who) > 1 for item, who in judges.items() if item not in shared),
        "duplicates": len(rows) - len({sid for sid, *_ in rows if sid is not None}),
        "rows": len(rows),
        "unacknowledged rows": len(set(stored) - set(run.acked)),
        "posts sent again after no answer": len(run.resent),
        "of them stored before the kill": len(run.resent & before_kill),  # the answer, not the post, was lost
    }


def p99_ms(latencies: list[float]) -> float:
    """The nearest-rank 99th percentile, in ms."""
    return sorted(latencies)[math.ceil(0.99 * len(latencies)) - 1] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annotators", type=int, default=20)
    parser.add_argument("--submissions", type=int, default=3000, help="acknowledged submissions per run")
    parser.add_argument("--prompts", type=int, default=1500, help="n prompts: n pairwise + 2n absolute items")
    args = parser.parse_args()
    items = build(args.prompts)
    gc.freeze()  # the items live to the end: the collector need not walk them again in every pass
    print(
        f"{len(items)} items ({OVERLAP} of each kind shared), {args.annotators} annotators, "
        f"{args.submissions} acknowledged submissions a run, after an unmeasured warm-up"
    )
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        # a warm-up first (the client's first run was 15% slower, whichever it was), then the anchor, then the kill
        for label, kill, target in (
            ("warm-up", False, 300),
            ("anchor, no kill", False, args.submissions),
            ("killed + restarted", True, args.submissions),
        ):
            db = Path(tmp) / f"{label}.sqlite"
            server = Server(db, free_port(), args.prompts, Path(tmp) / "server.log")
            server.start()
            try:
                run, seconds, downtime = asyncio.run(drive(server, args.annotators, target, kill))
            finally:
                server.stop(kill=False)
            found = check(db, run, items)
            results[label] = (run, seconds, found, server.peak_kib / 1024)
            print(
                f"{label:>18}: {len(run.acked)} acknowledged in {seconds:.1f} s = {len(run.acked) / seconds:.0f}/s, "
                f"{len(run.latencies)} requests, p99 {p99_ms(run.latencies):.0f} ms; server down {downtime:.1f} s; "
                f"peak RSS {server.peak_kib / 1024:.0f} MiB\n{'':>20}clients: {dict(sorted(run.outcomes.items()))}"
                f"\n{'':>20}database: {found}"
            )
    (base, base_s, _, _), (run, seconds, found, peak) = results["anchor, no kill"], results["killed + restarted"]
    p99 = p99_ms(run.latencies)
    slowdown = (len(run.acked) / seconds) / (len(base.acked) / base_s)
    print(
        f"ratios: p99/goal = {p99 / GOAL_P99_MS:.2f} (goal <= 1), p99 with/without the kill = "
        f"{p99 / p99_ms(base.latencies):.2f}, throughput with/without the kill = {slowdown:.2f}"
    )
    print(
        f"annotate_load: {len(run.acked)} acknowledged, lost {found['lost']}, double-claimed {found['double']}, "
        f"duplicate rows {found['duplicates']}, p99 {p99:.0f} ms, peak RSS {peak:.0f} MiB"
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        main()
