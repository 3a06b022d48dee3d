"""Generation over any OpenAI-compatible chat-completions server: vLLM, TGI, SGLang, `transformers serve`, hosted APIs.

A `GenerateBackend` for the generate stage (params generate.backend: openai). One HTTP request a prompt, at most
`concurrency` in flight (threads over one httpx client); each finished answer is yielded at once so the stage can
save it. Retries: 429, 5xx, timeouts, connection errors and unreadable bodies are retried with exponential backoff
and full jitter (a Retry-After header is honoured); other 4xx fail at once, since retrying cannot fix them.
The API key is read from the environment variable NAMED by `api_key_env`; it never reaches a log, an output or an
error message (any echo of it in a server reply is masked).

LIMA decoding: top_p, temperature and max_tokens are standard fields. The repetition penalty is not in the OpenAI
schema, so `penalty` says how to send it: "field" (a top-level `repetition_penalty`: vLLM, SGLang, TGI),
"generation_config" (a JSON GenerationConfig: `transformers serve`, which otherwise does not even sample), or
"omit" (the hosted OpenAI API rejects unknown fields). Finish reasons map to the contract: stop -> eot,
length -> length (anything else -> eot, the raw reason kept in meta).
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Literal

from lessismore.generate import Batch, GenResult, collect
from lessismore.records import content_id

PenaltyStyle = Literal["field", "generation_config", "omit"]
_FINISH = {"stop": "eot", "length": "length"}
_FIXES = {
    401: "the server refused the key: put a valid one in the env variable named by generate.openai.api_key_env",
    403: "the key has no access to this model: check generate.openai.model and the key's permissions",
    404: "no such route or model: base_url must end in /v1 and generate.openai.model must be a model the server lists",
    422: "a field was rejected: set generate.openai.repetition_penalty_as (generation_config for transformers serve)",
}


class EndpointError(RuntimeError):
    """The server could not give an answer; the message names the URL, what happened and the fix (never the key)."""


def prompt_seed(seed: int, prompt: str) -> int:
    """A per-prompt sampling seed (31 bits, what servers accept): a rerun asks for the same draw.

    >>> prompt_seed(1, "Hi") == prompt_seed(1, "Hi") != prompt_seed(2, "Hi")
    True
    """
    return int(content_id(seed, prompt), 16) % (1 << 31)


def chat_body(model: str, prompt: str, decoding: dict[str, Any], penalty: PenaltyStyle) -> dict[str, Any]:
    """The chat-completions request for one single-turn prompt with LIMA decoding.

    >>> d = {"top_p": 0.9, "temperature": 0.7, "repetition_penalty": 1.2, "max_new_tokens": 8, "seed": 5}
    >>> sorted(chat_body("m", "Hi", d, "field"))
    ['max_tokens', 'messages', 'model', 'repetition_penalty', 'seed', 'temperature', 'top_p']
    >>> "repetition_penalty" in chat_body("m", "Hi", d, "omit")
    False
    """
    body: dict[str, Any] = {
        "model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": decoding["max_new_tokens"],
        "temperature": decoding["temperature"], "top_p": decoding["top_p"], "seed": decoding["seed"],
    }  # fmt: skip
    if penalty == "field" and decoding["repetition_penalty"] != 1.0:
        body["repetition_penalty"] = decoding["repetition_penalty"]
    elif penalty == "generation_config":  # the whole config: the server builds a fresh GenerationConfig from it
        keys = ("top_p", "temperature", "repetition_penalty", "max_new_tokens")
        config = {"do_sample": True, "top_k": 0, **{k: decoding[k] for k in keys}}
        body["generation_config"] = json.dumps(config)
    return body


def parse_reply(data: Any) -> GenResult:
    """A chat-completions JSON reply -> GenResult; anything else raises ValueError (the caller retries).

    >>> parse_reply({"choices": [{"message": {"content": " hi "}, "finish_reason": "stop"}],
    ...              "usage": {"completion_tokens": 2}}).text
    'hi'
    """
    try:
        choice = data["choices"][0]
        text = choice["message"]["content"]
        usage = data.get("usage") or {}
    except (KeyError, IndexError, TypeError, AttributeError) as err:
        raise ValueError(f"not a chat completion (no choices[0].message.content): {err!r}") from None
    if not isinstance(text, str):
        raise ValueError("choices[0].message.content is not text")
    raw = choice.get("finish_reason")
    meta = {"finish_reason_raw": raw, "usage": usage, "served_model": data.get("model")}
    return GenResult(text.strip(), int(usage.get("completion_tokens") or 0), _FINISH.get(raw, "eot"), meta)  # type: ignore[arg-type]


class OpenAIBackend:
    """`GenerateBackend` over POST {base_url}/chat/completions."""

    def __init__(
        self, base_url: str, model: str, *, max_new_tokens: int, top_p: float, temperature: float,
        repetition_penalty: float, seed: int, api_key_env: str = "OPENAI_API_KEY", concurrency: int = 4,
        timeout_s: float = 120.0, max_retries: int = 5, penalty: PenaltyStyle = "field", backoff_s: float = 1.0,
        max_backoff_s: float = 60.0, progress: bool = False,
    ):  # fmt: skip
        if concurrency <= 0 or timeout_s <= 0 or max_retries < 0:
            raise ValueError("generate.openai: concurrency and timeout_s must be > 0, max_retries >= 0")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self.penalty, self.progress = model, penalty, progress
        self.decoding = {"top_p": top_p, "temperature": temperature, "repetition_penalty": repetition_penalty,
                         "max_new_tokens": max_new_tokens}  # fmt: skip
        self.seed, self.concurrency, self.timeout_s, self.max_retries = seed, concurrency, timeout_s, max_retries
        self.backoff_s, self.max_backoff_s, self.key_env = backoff_s, max_backoff_s, api_key_env
        self._key = os.environ.get(api_key_env, "")  # local servers need none: then no Authorization header
        self._jitter = random.Random()  # jitter only spreads retries out; it never touches what is generated

    def generate(self, prompts: list[str]) -> list[GenResult]:
        return collect(self.generate_batches(prompts), len(prompts))

    def generate_batches(self, prompts: list[str]) -> Iterator[Batch]:
        """One ([i], [answer]) per prompt as its request finishes; the first permanent failure stops the rest."""
        import httpx
        from tqdm.auto import tqdm

        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        limits = httpx.Limits(max_connections=self.concurrency)
        with (
            httpx.Client(headers=headers, limits=limits, timeout=self.timeout_s) as client,
            ThreadPoolExecutor(self.concurrency, thread_name_prefix="openai") as pool,
            tqdm(total=len(prompts), desc="generate", unit="answer", disable=not self.progress) as bar,
        ):
            futures: dict[Future, int] = {pool.submit(self._answer, client, p): i for i, p in enumerate(prompts)}
            try:
                pending = set(futures)
                while pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in sorted(done, key=futures.__getitem__):
                        bar.update(1)
                        yield [futures[fut]], [fut.result()]
            finally:  # an error or an abandoned generator: do not start the requests still queued
                for fut in futures:
                    fut.cancel()

    def _answer(self, client: Any, prompt: str) -> GenResult:
        seed = prompt_seed(self.seed, prompt)
        res = self._post(client, chat_body(self.model, prompt, {**self.decoding, "seed": seed}, self.penalty))
        return GenResult(res.text, res.new_tokens, res.finish_reason, {**res.meta, "seed": seed})

    def _post(self, client: Any, body: dict[str, Any]) -> GenResult:
        import httpx

        last = ""
        for attempt in range(self.max_retries + 1):
            retry_after = 0.0
            try:
                reply = client.post(self.url, json=body)
            except httpx.TransportError as err:  # timeouts, refused/reset connections, protocol errors
                last = f"{type(err).__name__}: {self._mask(str(err))}"
            else:
                if reply.status_code == 200:
                    try:
                        return parse_reply(reply.json())
                    except ValueError as err:  # garbage from a proxy or a half-up server: worth another try
                        last = f"unreadable reply ({self._mask(str(err))}): {self._mask(reply.text[:200])!r}"
                elif reply.status_code == 429 or reply.status_code >= 500:
                    last = f"HTTP {reply.status_code}: {self._mask(reply.text[:200])!r}"
                    retry_after = _seconds(reply.headers.get("retry-after"))
                else:
                    fix = _FIXES.get(reply.status_code, "check base_url, model and the request fields")
                    raise EndpointError(
                        f"{self.url}: HTTP {reply.status_code} {self._mask(reply.text[:300])!r}; {fix}"
                    )
            if attempt < self.max_retries:
                time.sleep(self._backoff(attempt, retry_after))
        raise EndpointError(
            f"{self.url}: no answer after {self.max_retries + 1} attempts (last: {last}); check that the server is up "
            f"and serves {self.model!r} at generate.openai.base_url, or raise generate.openai.max_retries / timeout_s"
        )

    def _backoff(self, attempt: int, retry_after: float) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2^attempt)], but never sooner than the server asked."""
        return min(self.max_backoff_s, max(retry_after, self._jitter.uniform(0, self.backoff_s * 2**attempt)))

    def _mask(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text


def _seconds(value: str | None) -> float:
    """A Retry-After header in seconds (the HTTP-date form is rare from model servers: treated as absent).

    >>> _seconds("2"), _seconds(None), _seconds("Wed, 21 Oct 2015 07:28:00 GMT")
    (2.0, 0.0, 0.0)
    """
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0
