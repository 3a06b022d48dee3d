"""Real HTTP servers on 127.0.0.1 for the OpenAI-compatible tests (generate, judge) and benchmarks/judge_throughput.py.

- `FaultServer`: a small chat-completions server of the tests' own. Each request takes the next scripted fault
  (429, 500, a stall past the client's timeout, a garbage body, a 401 that echoes the key) and otherwise answers
  after a fixed latency: the prompt echoed, or a scripted reply text, and, when the request asks for logprobs and
  the server was given `top_logprobs`, those as the first token's top log-probabilities (the OpenAI schema). It
  records every body and header, and the most requests it ever had in flight.
- `serve_transformers`: `transformers serve <model dir>` on a free port, offline, up until the block ends.
Fixtures wrap these in the test modules (`fault_servers()` gives a `start(*script, **options)` function).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.conftest import run_env

Reply = str | Callable[[str], str] | None  # fixed text, text from the user message, or None: echo the message


class FaultServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # many clients connecting at once (the benchmark) must not be refused

    def __init__(
        self,
        script: Sequence[str] = (),
        *,
        reply: Reply = None,
        top_logprobs: Sequence[tuple[str, float]] = (),
        latency_s: float = 0.05,
        stall_s: float = 1.0,
    ):
        super().__init__(("127.0.0.1", 0), Handler)
        self.script, self.reply, self.top_logprobs = list(script), reply, list(top_logprobs)
        self.latency_s, self.stall_s = latency_s, stall_s  # latency 0.05 s: long enough for requests to overlap
        self.bodies: list[dict[str, Any]] = []
        self.headers_seen: list[dict[str, str]] = []
        self.lock, self.in_flight, self.max_in_flight = threading.Lock(), 0, 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def start(self) -> FaultServer:
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()  # quick shutdown
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def completion(self, body: dict[str, Any]) -> dict[str, Any]:
        """The chat completion this server answers `body` with (when no fault is scripted)."""
        message = body["messages"][-1]["content"]
        if self.reply is None:
            text = "echo: " + message
        else:
            text = self.reply if isinstance(self.reply, str) else self.reply(message)
        choice: dict[str, Any] = {
            "index": 0,
            "finish_reason": "stop",
            "message": {"role": "assistant", "content": text},
        }
        if body.get("logprobs") and self.top_logprobs:
            top = [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in self.top_logprobs]
            first = max(top, key=lambda t: t["logprob"])
            choice["logprobs"] = {"content": [{**first, "top_logprobs": top[: body.get("top_logprobs", 0)]}]}
            choice["message"]["content"] = first["token"] if self.reply is None else text
        usage = {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}
        return {"object": "chat.completion", "model": body["model"], "choices": [choice], "usage": usage}


class Handler(BaseHTTPRequestHandler):
    server: FaultServer

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self._leave()  # before the reply goes out: a client may send its next request the moment it has it
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        srv = self.server
        with srv.lock:
            srv.bodies.append(body)
            srv.headers_seen.append(dict(self.headers))
            fault = srv.script.pop(0) if srv.script else "ok"
            srv.in_flight += 1
            srv.max_in_flight = max(srv.max_in_flight, srv.in_flight)
        self._inside = True
        try:
            if fault == "429":
                self._send(429, b'{"error": "slow down"}', {"Retry-After": "0"})
            elif fault == "500":
                self._send(500, b"internal error")
            elif fault == "stall":
                time.sleep(srv.stall_s)  # past the client's timeout
                self._send(200, b"{}")
            elif fault == "garbage":
                self._send(200, b"<html>502 bad gateway from a proxy</html>")
            elif fault == "401":  # a careless server that echoes the credentials it refused
                self._send(401, f"bad key {self.headers.get('Authorization')}".encode())
            else:
                time.sleep(srv.latency_s)
                self._send(200, json.dumps(srv.completion(body)).encode())
        finally:
            self._leave()

    def _leave(self) -> None:
        """This request stops counting as in flight (once)."""
        if getattr(self, "_inside", False):
            self._inside = False
            with self.server.lock:
                self.server.in_flight -= 1


@contextmanager
def fault_servers() -> Iterator[Callable[..., FaultServer]]:
    """`start(*script, **options)` starts a FaultServer; all of them stop when the block ends."""
    servers: list[FaultServer] = []

    def start(*script: str, **options: Any) -> FaultServer:
        servers.append(FaultServer(script, **options).start())
        return servers[-1]

    try:
        yield start
    finally:
        for srv in servers:
            srv.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve_transformers(model_dir: str | Path, log: Path, timeout_s: float = 120.0, threads: int = 1) -> Iterator[str]:
    """`transformers serve model_dir` on 127.0.0.1 (CPU, offline); yields its base URL (…/v1), logs to `log`.

    `threads`: torch's CPU threads in the server. On 2 cores the default (one per core) stalled about one server
    in four at ~1 s a request (its OpenMP workers fight the event loop and the generation thread; measured 0.02 s
    a request otherwise); one thread never did in 16 starts, and a tiny model needs no more.
    """
    port = free_port()
    cmd = ["transformers", "serve", str(model_dir), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"]
    env = {**run_env(), "OMP_NUM_THREADS": str(threads)}
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"transformers serve did not come up:\n{log.read_text()[-3000:]}") from None
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@contextmanager
def ray_cluster(tmp: Path, nodes: int = 2, object_store_mb: int = 100) -> Iterator[str]:
    """A real Ray cluster on 127.0.0.1: `ray start --head` plus nodes - 1 nodes joining it, one CPU each and a small
    object store; yields its address (host:port). Always stopped (`ray stop --force`), even when the test fails."""
    port = free_port()
    env = {**run_env(), "RAY_USAGE_STATS_ENABLED": "0"}
    common = ["--num-cpus=1", f"--object-store-memory={object_store_mb * 1024 * 1024}", "--disable-usage-stats"]
    head = ["ray", "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--include-dashboard=false"]
    head += [f"--temp-dir={tmp}", *common]
    join = ["ray", "start", f"--address=127.0.0.1:{port}", "--node-ip-address=127.0.0.1", *common]
    try:
        for cmd in [head] + [join] * (nodes - 1):
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
            assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        yield f"127.0.0.1:{port}"
    finally:
        if "ray" in sys.modules and sys.modules["ray"].is_initialized():
            sys.modules["ray"].shutdown()  # a driver still connected to a stopped cluster exits its process
        subprocess.run(["ray", "stop", "--force"], env=env, capture_output=True, timeout=120)
