"""generate/openai_backend.py against real servers: `transformers serve` on the tiny model, and a fault injector.

The fault injector is a small HTTP server of this test's own on 127.0.0.1: each request takes the next scripted
fault (429, 500, a stalled reply past the timeout, a garbage body, 401) and otherwise answers a chat completion
that echoes the prompt, so the retry path, input order, concurrency and key handling are all observed for real.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lessismore.generate.openai_backend import EndpointError, OpenAIBackend
from tests.conftest import run_env

KEY_ENV, KEY = "LESSISMORE_TEST_KEY", "sk-test-secret-4242"
LIMA = dict(max_new_tokens=6, top_p=0.9, temperature=0.7, repetition_penalty=1.2, seed=3)


class FaultServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, script: list[str]):
        super().__init__(("127.0.0.1", 0), Handler)
        self.script, self.bodies, self.headers_seen = list(script), [], []
        self.lock, self.in_flight, self.max_in_flight = threading.Lock(), 0, 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class Handler(BaseHTTPRequestHandler):
    server: FaultServer

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
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
        try:
            if fault == "429":
                self._send(429, b'{"error": "slow down"}', {"Retry-After": "0"})
            elif fault == "500":
                self._send(500, b"internal error")
            elif fault == "stall":
                time.sleep(1.0)  # past the client's timeout
                self._send(200, b"{}")
            elif fault == "garbage":
                self._send(200, b"<html>502 bad gateway from a proxy</html>")
            elif fault == "401":  # a careless server that echoes the credentials it refused
                self._send(401, f"bad key {self.headers.get('Authorization')}".encode())
            else:
                time.sleep(0.05)  # long enough for concurrent requests to overlap
                text = "echo: " + body["messages"][0]["content"]
                reply = {"model": body["model"], "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
                         "usage": {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}}  # fmt: skip
                self._send(200, json.dumps(reply).encode())
        finally:
            with srv.lock:
                srv.in_flight -= 1


@pytest.fixture
def fault_server():
    servers: list[FaultServer] = []

    def start(*script: str) -> FaultServer:
        srv = FaultServer(list(script))
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def _backend(url: str, **kw) -> OpenAIBackend:
    opts = dict(api_key_env=KEY_ENV, concurrency=3, timeout_s=0.5, max_retries=4, backoff_s=0.01, max_backoff_s=0.05)
    return OpenAIBackend(url, "served-model", **{**LIMA, **opts, **kw})


def test_answers_come_back_in_input_order_within_the_concurrency_limit(fault_server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    srv = fault_server()
    prompts = [f"question {i}" for i in range(9)]
    results = _backend(srv.url).generate(prompts)
    assert [r.text for r in results] == [f"echo: {p}" for p in prompts]
    assert {r.finish_reason for r in results} == {"eot"} and {r.new_tokens for r in results} == {4}
    assert results[0].meta["usage"]["prompt_tokens"] == 5 and results[0].meta["finish_reason_raw"] == "stop"
    assert 1 < srv.max_in_flight <= 3
    body = srv.bodies[0]
    want = {"model": "served-model", "max_tokens": 6, "top_p": 0.9, "temperature": 0.7, "repetition_penalty": 1.2}
    assert {k: body[k] for k in want} == want
    assert len({b["seed"] for b in srv.bodies}) == 9  # one recorded seed per prompt
    assert {h["Authorization"] for h in srv.headers_seen} == {f"Bearer {KEY}"}


def test_429_500_timeouts_and_garbage_are_retried_until_an_answer(fault_server):
    srv = fault_server("429", "500", "stall", "garbage")
    (result,) = _backend(srv.url, concurrency=1).generate(["hello"])
    assert result.text == "echo: hello" and len(srv.bodies) == 5


def test_a_permanent_failure_names_the_url_and_the_fix_but_never_the_key(fault_server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    srv = fault_server(*["500"] * 10)
    with pytest.raises(EndpointError) as err:
        _backend(srv.url, max_retries=2).generate(["hello"])
    msg = str(err.value)
    assert srv.url + "/chat/completions" in msg and "3 attempts" in msg and "max_retries" in msg and KEY not in msg
    assert len(srv.bodies) == 3


def test_a_refused_key_fails_at_once_and_the_echoed_key_is_masked(fault_server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    srv = fault_server("401")
    with pytest.raises(EndpointError, match="api_key_env") as err:
        _backend(srv.url).generate(["hello"])
    assert KEY not in str(err.value) and "***" in str(err.value) and len(srv.bodies) == 1


def test_a_server_that_is_not_there_is_retried_then_reported(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(EndpointError, match="ConnectError.*check that the server is up"):
        _backend(f"http://127.0.0.1:{port}/v1", max_retries=1).generate(["hello"])


# ---------------------------------------------------------------------------------------------------------------
# a real OpenAI-compatible server: `transformers serve` on the tiny random model, offline


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def transformers_serve(tiny_model_dir: Path, tmp_path_factory):
    port, log = _free_port(), tmp_path_factory.mktemp("serve") / "serve.log"
    cmd = ["transformers", "serve", str(tiny_model_dir), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"]
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, env=run_env(), stdout=fh, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"transformers serve did not come up:\n{log.read_text()[-3000:]}")
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1", str(tiny_model_dir)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.slow
def test_transformers_serve_answers_with_lima_decoding(transformers_serve):
    url, model = transformers_serve
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    backend = OpenAIBackend(url, model, penalty="generation_config", concurrency=2, timeout_s=60, **LIMA)
    prompts = ["Hi", "Tell me a story about a fox.", "Why?"]
    results = backend.generate(prompts)
    assert len(results) == 3
    for r in results:  # the untrained random model rarely closes its turn within 6 tokens
        assert r.finish_reason in ("eot", "length") and 0 < r.new_tokens <= 6
        assert r.meta["usage"]["completion_tokens"] == r.new_tokens and r.meta["served_model"] == model
    assert any(r.finish_reason == "length" for r in results)
    assert backend.generate(prompts[:1])[0].new_tokens <= 6
