"""The one retrying chat-completions client behind every OpenAI-compatible backend: generation and judging.

Used by generate/openai_backend.py (the generate stage, params generate.openai) and judge/openai.py (the judge
stage, params judge.judges[i].openai). Callers build the request bodies and a `parse` for the replies; `run`
posts them, at most `concurrency` in flight (threads over one httpx client), and yields (index, parsed reply) as
each finishes, so a stage can save every answer at once. On an error or an abandoned generator the queued
requests are cancelled and the ones in flight stop retrying.
Retries: 429, 5xx, timeouts, connection errors and unreadable bodies (`parse` raising ValueError) are retried
with exponential backoff and full jitter (a Retry-After header is honoured); other 4xx fail at once, with the fix
from a table that names the params key to change (`section`, e.g. "judge.judges[0].openai"). `parse` may raise
EndpointError itself for a reply no retry can fix. The API key is read from the environment variable NAMED by
`api_key_env`; it never reaches a log, an output or an error message (any echo of it in a reply is masked).
"""

from __future__ import annotations

import json
import os
import random
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Any, TypeVar

from lessismore.errors import UserError

R = TypeVar("R")

# {section}: where the endpoint is configured ("generate.openai"); {model_key}: where the model name is set
FIXES = {
    400: "the server rejected the request: its message names the field; check {model_key} and {section}",
    401: "the server refused the key: put a valid one in the env variable named by {section}.api_key_env",
    403: "the key has no access to this model: check {model_key} and the key's permissions",
    404: "no such route or model: {section}.base_url must end in /v1 and {model_key} must be a model the server lists",
    422: "the server rejected a field of the request: its message names it; check {section}",
}


class EndpointError(UserError, RuntimeError):
    """The server could not give an answer; the message names the URL, what happened and the fix (never the key)."""


class Endpoint:
    """POST {base_url}/chat/completions with retries, bounded concurrency and a masked key."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 4,
        timeout_s: float = 120.0,
        max_retries: int = 5,
        backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        section: str = "generate.openai",
        model_key: str = "",
        fixes: Mapping[int, str] | None = None,
        progress: bool = False,
    ):
        if concurrency <= 0 or timeout_s <= 0 or max_retries < 0:
            raise ValueError(f"{section}: concurrency and timeout_s must be > 0, max_retries >= 0")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self.section, self.model_key = model, section, model_key or f"{section}.model"
        self.concurrency, self.timeout_s, self.max_retries = concurrency, timeout_s, max_retries
        self.backoff_s, self.max_backoff_s, self.progress = backoff_s, max_backoff_s, progress
        self.fixes = {**FIXES, **(fixes or {})}
        self._key = os.environ.get(api_key_env, "")  # local servers need none: then no Authorization header
        self._jitter = random.Random()  # jitter only spreads retries out; it never touches what is asked

    def run(
        self, bodies: Sequence[dict[str, Any]], parse: Callable[[Any], R], desc: str = "requests", unit: str = "call"
    ) -> Iterator[tuple[int, R]]:
        """(index, parse(reply JSON)) for every body as its request finishes; the first permanent failure raises."""
        import httpx
        from tqdm.auto import tqdm

        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        limits = httpx.Limits(max_connections=self.concurrency)
        stop = threading.Event()  # set when the caller is gone: requests in flight stop retrying
        with (
            httpx.Client(headers=headers, limits=limits, timeout=self.timeout_s) as client,
            ThreadPoolExecutor(self.concurrency, thread_name_prefix="endpoint") as pool,
            tqdm(total=len(bodies), desc=desc, unit=unit, disable=not self.progress) as bar,
        ):
            futures = {pool.submit(self.post, client, b, parse, stop): i for i, b in enumerate(bodies)}
            try:
                pending = set(futures)
                while pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in sorted(done, key=futures.__getitem__):
                        bar.update(1)
                        yield futures[fut], fut.result()
            finally:  # an error or an abandoned generator: start none of the queued requests, retry none in flight
                stop.set()
                for fut in futures:
                    fut.cancel()

    def post(
        self, client: Any, body: dict[str, Any], parse: Callable[[Any], R], stop: threading.Event | None = None
    ) -> R:
        """One request, retried until `parse` accepts a reply or the retries run out."""
        import httpx

        stop, last = stop or threading.Event(), ""
        for attempt in range(self.max_retries + 1):
            retry_after = 0.0
            try:
                reply = client.post(self.url, json=body)
            except httpx.TransportError as err:  # timeouts, refused/reset connections, protocol errors
                last = f"{type(err).__name__}: {self.mask(str(err))}"
            else:
                if reply.status_code == 200:
                    try:  # a server that echoes the key in a normal reply must not carry it into any record
                        return parse(json.loads(self.mask(reply.text)) if self._key else reply.json())
                    except ValueError as err:  # garbage from a proxy or a half-up server: worth another try
                        last = f"unreadable reply ({self.mask(str(err))}): {self.mask(reply.text[:200])!r}"
                elif reply.status_code == 429 or reply.status_code >= 500:
                    last = f"HTTP {reply.status_code}: {self.mask(reply.text[:200])!r}"
                    retry_after = _seconds(reply.headers.get("retry-after"))
                else:
                    status, text = reply.status_code, self.mask(reply.text[:300])
                    raise EndpointError(f"{self.url}: HTTP {status} {text!r}; {self.fix(status)}")
            if attempt < self.max_retries and stop.wait(self._backoff(attempt, retry_after)):
                raise EndpointError(f"{self.url}: cancelled (the caller stopped reading replies)")
        raise EndpointError(
            f"{self.url}: no answer after {self.max_retries + 1} attempts (last: {last}); check that the server is up "
            f"and serves {self.model!r} at {self.section}.base_url, or raise {self.section}.max_retries / timeout_s"
        )

    def fix(self, status: int) -> str:
        """What to change for a non-retryable HTTP status, naming this endpoint's params keys.

        >>> Endpoint("http://h/v1", "m", section="judge.judges[1].openai").fix(401)
        'the server refused the key: put a valid one in the env variable named by judge.judges[1].openai.api_key_env'
        """
        text = self.fixes.get(status, "check {section}.base_url, {model_key} and the request fields")
        return text.format(section=self.section, model_key=self.model_key)

    def mask(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    def _backoff(self, attempt: int, retry_after: float) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2^attempt)], but never sooner than the server asked."""
        return min(self.max_backoff_s, max(retry_after, self._jitter.uniform(0, self.backoff_s * 2**attempt)))


def _seconds(value: str | None) -> float:
    """A Retry-After header in seconds (the HTTP-date form is rare from model servers: treated as absent).

    >>> _seconds("2"), _seconds(None), _seconds("Wed, 21 Oct 2015 07:28:00 GMT")
    (2.0, 0.0, 0.0)
    """
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0
