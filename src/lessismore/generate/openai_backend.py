"""Generation over any OpenAI-compatible chat-completions server: vLLM, TGI, SGLang, `transformers serve`, hosted APIs.

A `GenerateBackend` for the generate stage (params generate.backend: openai). One HTTP request a prompt, sent
through lessismore/endpoint.py (shared with the OpenAI-compatible judge): at most `concurrency` in flight, each
finished answer yielded at once so the stage can save it, 429/5xx/timeouts/garbage retried with backoff and
jitter, other 4xx failing at once with the fix, the key (from the env var NAMED by `api_key_env`) never shown.

LIMA decoding: top_p, temperature and max_tokens are standard fields. The repetition penalty is not in the OpenAI
schema, so `penalty` says how to send it: "field" (a top-level `repetition_penalty`: vLLM, SGLang, TGI),
"generation_config" (a JSON GenerationConfig: `transformers serve`, which otherwise does not even sample), or
"omit" (the hosted OpenAI API rejects unknown fields). Finish reasons map to the contract: stop -> eot,
length -> length (anything else -> eot, the raw reason kept in meta).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal

from lessismore.endpoint import Endpoint, EndpointError
from lessismore.generate import Batch, GenResult, collect
from lessismore.records import content_id

PenaltyStyle = Literal["field", "generation_config", "omit"]
_FINISH = {"stop": "eot", "length": "length"}
# a 422 from a generation server is nearly always the repetition penalty sent in a shape it does not take
_FIX_422 = "a field was rejected: set {section}.repetition_penalty_as (generation_config for transformers serve)"


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
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": decoding["max_new_tokens"],
        "temperature": decoding["temperature"],
        "top_p": decoding["top_p"],
        "seed": decoding["seed"],
    }
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
        self,
        base_url: str,
        model: str,
        *,
        max_new_tokens: int,
        top_p: float,
        temperature: float,
        repetition_penalty: float,
        seed: int,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 4,
        timeout_s: float = 120.0,
        max_retries: int = 5,
        penalty: PenaltyStyle = "field",
        backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        progress: bool = False,
        section: str = "generate.openai",
    ):
        self.endpoint = Endpoint(
            base_url,
            model,
            api_key_env=api_key_env,
            concurrency=concurrency,
            timeout_s=timeout_s,
            max_retries=max_retries,
            backoff_s=backoff_s,
            max_backoff_s=max_backoff_s,
            section=section,
            fixes={422: _FIX_422},
            progress=progress,
        )
        self.url, self.model, self.penalty, self.seed = self.endpoint.url, model, penalty, seed
        self.decoding = {
            "top_p": top_p,
            "temperature": temperature,
            "repetition_penalty": repetition_penalty,
            "max_new_tokens": max_new_tokens,
        }

    def generate(self, prompts: list[str]) -> list[GenResult]:
        return collect(self.generate_batches(prompts), len(prompts))

    def generate_batches(self, prompts: list[str]) -> Iterator[Batch]:
        """One ([i], [answer]) per prompt as its request finishes; the first permanent failure stops the rest."""
        seeds = [prompt_seed(self.seed, p) for p in prompts]
        bodies = [
            chat_body(self.model, p, {**self.decoding, "seed": s}, self.penalty)
            for p, s in zip(prompts, seeds, strict=True)
        ]
        for i, res in self.endpoint.run(bodies, parse_reply, desc="generate", unit="answer"):
            yield [i], [GenResult(res.text, res.new_tokens, res.finish_reason, {**res.meta, "seed": seeds[i]})]


__all__ = ["EndpointError", "OpenAIBackend", "PenaltyStyle", "chat_body", "parse_reply", "prompt_seed"]
