"""generate/openai_backend.py against real servers: `transformers serve` on the tiny model, and a fault injector.

The fault injector (tests/servers.py) is a small HTTP server of the tests' own on 127.0.0.1: each request takes the
next scripted fault (429, 500, a stalled reply past the timeout, a garbage body, 401) and otherwise answers a chat
completion that echoes the prompt, so the retry path, input order, concurrency and key handling are all observed.
"""

from __future__ import annotations

import os
import socket

import pytest

from lessismore.generate.openai_backend import EndpointError, OpenAIBackend
from tests.servers import fault_servers

KEY_ENV, KEY = "LESSISMORE_TEST_KEY", "sk-test-secret-4242"
LIMA = dict(max_new_tokens=6, top_p=0.9, temperature=0.7, repetition_penalty=1.2, seed=3)


@pytest.fixture
def fault_server():
    with fault_servers() as start:
        yield start


def _backend(url: str, **kw) -> OpenAIBackend:
    opts = dict(api_key_env=KEY_ENV, concurrency=3, timeout_s=0.5, max_retries=4, backoff_s=0.01, max_backoff_s=0.05)
    return OpenAIBackend(url, "served-model", **{**LIMA, **opts, **kw})


def test_answers_come_back_in_input_order_within_the_concurrency_limit(fault_server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    srv = fault_server(latency_s=0.3)  # long enough to overlap on a loaded machine (0.05 s did not, under load)
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
