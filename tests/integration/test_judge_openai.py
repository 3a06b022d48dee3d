"""judge/openai.py against real servers: the tests' fault injector (tests/servers.py) and `transformers serve`.

The fault server answers real HTTP on 127.0.0.1 with scripted faults (429, 500, stalls, garbage, a key-echoing
401), scripted logprobs and usage, so retries, order, concurrency, logprobs parsing and key masking are observed
on the wire. `transformers serve` on the tiny random model is the real OpenAI-compatible server; it ignores
logprobs=true (transformers 5.x lists it among its unsupported fields), so there logprobs mode must fail clearly.
"""

from __future__ import annotations

import math

import pytest

from lessismore.endpoint import EndpointError
from lessismore.judge import load_template, render_fitted
from lessismore.judge.openai import OpenAIJudge
from lessismore.judge.protocol import Reply
from tests.servers import fault_servers

KEY_ENV, KEY = "LESSISMORE_TEST_JUDGE_KEY", "sk-judge-secret-777"
PAIRWISE = ["A", "B", "C"]


@pytest.fixture
def fault_server():
    with fault_servers() as start:
        yield start


def _judge(url: str, mode: str = "generate", **kw) -> OpenAIJudge:
    opts = dict(api_key_env=KEY_ENV, concurrency=3, timeout_s=0.5, max_retries=4, backoff_s=0.01, max_backoff_s=0.05)
    return OpenAIJudge(url, "judge-model", mode=mode, **{**opts, **kw})


def _ask(judge: OpenAIJudge, messages: list[str], seeds: list[int] | None = None) -> list[Reply]:
    """Every reply in input order, checking that each index came back exactly once."""
    got: dict[int, Reply] = {}
    for idx, replies in judge.ask_batches(messages, PAIRWISE, seeds or [0] * len(messages)):
        for i, reply in zip(idx, replies, strict=True):
            assert i not in got
            got[i] = reply
    assert sorted(got) == list(range(len(messages)))
    return [got[i] for i in range(len(messages))]


def test_generate_mode_replies_in_input_order_within_the_concurrency_limit(fault_server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    srv = fault_server()
    messages = [f"pair {i}: which is better?" for i in range(8)]
    replies = _ask(_judge(srv.url, max_new_tokens=7), messages)
    assert [r.text for r in replies] == [f"echo: {m}" for m in messages]
    assert {r.scores for r in replies} == {None}
    assert replies[0].usage == {"prompt_tokens": 5, "completion_tokens": 4}
    assert 1 < srv.max_in_flight <= 3
    body = srv.bodies[0]
    assert {k: body[k] for k in ("model", "max_tokens", "temperature")} == {
        "model": "judge-model",
        "max_tokens": 7,
        "temperature": 0.0,
    }
    assert "seed" not in body and "logprobs" not in body  # greedy: no seed to send
    assert {h["Authorization"] for h in srv.headers_seen} == {f"Bearer {KEY}"}


def test_sampling_sends_each_messages_own_seed(fault_server):
    srv = fault_server()
    _ask(_judge(srv.url, temperature=0.7), ["one", "two", "three"], seeds=[11, 22, 33])
    assert sorted((b["messages"][0]["content"], b["seed"]) for b in srv.bodies) == [
        ("one", 11),
        ("three", 33),
        ("two", 22),
    ]


def test_429_500_stalls_and_garbage_are_retried_until_an_answer(fault_server):
    srv = fault_server("429", "500", "stall", "garbage", reply="B")
    (reply,) = _ask(_judge(srv.url, concurrency=1), ["judge this"])
    assert reply.text == "B" and len(srv.bodies) == 5


def test_a_permanent_failure_names_the_url_and_the_judges_keys_but_never_the_key(fault_server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    srv = fault_server(*["500"] * 10)
    with pytest.raises(EndpointError) as err:
        _ask(_judge(srv.url, max_retries=2, section="judge.judges[2].openai"), ["judge this"])
    msg = str(err.value)
    assert srv.url + "/chat/completions" in msg and "3 attempts" in msg and KEY not in msg
    assert "judge.judges[2].openai.max_retries" in msg and len(srv.bodies) == 3

    srv = fault_server("401")
    with pytest.raises(EndpointError, match=r"judge\.judges\[1\]\.openai\.api_key_env") as err:
        _ask(_judge(srv.url, section="judge.judges[1].openai"), ["judge this"])
    assert KEY not in str(err.value) and "***" in str(err.value) and len(srv.bodies) == 1


def test_an_error_or_an_abandoned_run_stops_the_queued_requests(fault_server):
    srv = fault_server("ok", "401")
    with pytest.raises(EndpointError):
        _ask(_judge(srv.url, concurrency=1), [f"m{i}" for i in range(20)])
    assert len(srv.bodies) <= 3  # the one after the failure may already have been on its way

    srv = fault_server()
    batches = _judge(srv.url, concurrency=2).ask_batches([f"m{i}" for i in range(20)], PAIRWISE, [0] * 20)
    next(batches)
    batches.close()  # returns once the requests in flight are done
    assert len(srv.bodies) <= 4


def test_logprobs_become_option_scores(fault_server):
    top = [("A", -0.2), (" B", -1.9), ("B", -2.5), ("Answer", -3.0), ("c", -4.0)]
    srv = fault_server(top_logprobs=top)
    (reply,) = _ask(_judge(srv.url, "logprobs"), ["judge this"])
    assert reply.scores == {"A": -0.2, "B": -1.9, "C": -math.inf}  # " B" counts; lower-case "c" does not
    assert reply.usage == {"prompt_tokens": 5, "completion_tokens": 4}
    body = srv.bodies[0]
    assert (body["max_tokens"], body["logprobs"], body["top_logprobs"]) == (1, True, 20)


def test_a_server_without_logprobs_is_a_clear_error_at_once(fault_server):
    srv = fault_server(reply="A")  # answers, but never with logprobs
    with pytest.raises(EndpointError, match=r"without log-probabilities.*judge\.judges\[0\]\.mode: generate"):
        _ask(_judge(srv.url, "logprobs"), ["judge this"])
    assert len(srv.bodies) == 1  # no retry can fix it


def test_token_estimate_keeps_a_fitted_message_inside_the_context():
    judge = OpenAIJudge("http://127.0.0.1:9/v1", "m", mode="generate", context_tokens=600, max_new_tokens=16)
    assert judge.max_input_tokens == 600 - 32 - 16
    fields = {
        "prompt": "Why is the sky blue?",
        "answer_a": "Rayleigh scattering. " * 200,
        "answer_b": "空は青い。" * 100,
    }
    message, truncated = render_fitted(load_template("pairwise"), fields, judge.count_tokens, judge.max_input_tokens)
    assert truncated and judge.count_tokens(message) <= judge.max_input_tokens and "[...]" in message


# ---------------------------------------------------------------------------------------------------------------
# a real OpenAI-compatible server: `transformers serve` on the tiny random model, offline


@pytest.mark.slow
def test_transformers_serve_judges_a_pairwise_message(transformers_serve):
    url, model = transformers_serve
    fields = {"prompt": "Name a colour.", "answer_a": "Blue.", "answer_b": "I like turtles."}
    message = load_template("pairwise").render(**fields)
    judge = OpenAIJudge(url, model, mode="generate", max_new_tokens=4, concurrency=2, timeout_s=60)
    replies = _ask(judge, [message, message.replace("Blue", "Red")])
    for reply in replies:  # the random model's words are noise; the round trip and the accounting are real
        assert isinstance(reply.text, str) and reply.scores is None
        assert reply.usage["prompt_tokens"] > 50 and 0 < reply.usage["completion_tokens"] <= 4


@pytest.mark.slow
def test_transformers_serve_has_no_logprobs_so_logprobs_mode_says_use_generate(transformers_serve):
    url, model = transformers_serve
    judge = OpenAIJudge(url, model, mode="logprobs", concurrency=1, timeout_s=60, section="judge.judges[0].openai")
    with pytest.raises(EndpointError, match=r"without log-probabilities.*judge\.judges\[0\]\.mode: generate"):
        _ask(judge, ["Reply with one letter: A, B or C."])


def test_a_key_echoed_in_a_normal_reply_is_masked_in_every_record_and_file(fault_server, monkeypatch, tmp_path):
    """A server that answers 200 with the caller's key inside the reply: neither the judgments, nor the cache file
    (pushed to S3 by `make push`), nor the grades carry it."""
    from lessismore.judge.cache import KeyedCache
    from lessismore.judge.protocol import JudgeRun, Pair, judge_pairs, rate_responses
    from lessismore.records import Origin, Prompt, Response

    monkeypatch.setenv(KEY_ENV, KEY)
    srv = fault_server(reply=f"[[A]] (your key {KEY} was received)")
    prompt = Prompt(text="Why is the sky blue?", split="test", origin=Origin("t", "t.jsonl", "1"))
    answers = [Response(prompt.id, m, "c", f"{m} says: scattering.", {}) for m in ("finetuned", "base")]
    run = JudgeRun("served", "fp-served")
    with KeyedCache(tmp_path / "judge_cache.jsonl") as cache:
        judgments, _ = judge_pairs([Pair(prompt, *answers)], _judge(srv.url), load_template("pairwise"), run, cache)
        items = [(prompt, a) for a in answers]
        ratings, _ = rate_responses(items, _judge(srv.url), load_template("absolute"), run, cache)
    assert len(judgments) == 2 and len(srv.bodies) >= 3
    written = (tmp_path / "judge_cache.jsonl").read_text()
    records = repr(judgments) + repr(ratings)
    assert KEY not in written and KEY not in records
    assert "your key *** was received" in written and "***" in judgments[0].raw
