"""An OpenAI-compatible judge backend: any chat-completions server (a hosted GPT-4-class API, vLLM, llama.cpp, TGI,
`transformers serve`) judges over HTTP.

Sits under judge/protocol.py like judge/local.py: the protocol renders the template, fits it to
`max_input_tokens`, and reads the `Reply`s this backend yields (params judge.judges[i] with backend: openai).
Requests go through lessismore/endpoint.py, the retrying client generation also uses: at most `concurrency` in
flight, each reply yielded as it finishes, 429/5xx/timeouts/garbage retried, the key never shown. Two modes:
- "generate": a short reply (max_tokens = max_new_tokens), read by judge/parse.py.
- "logprobs": ONE token with logprobs=true, top_logprobs=20 (the OpenAI schema, also vLLM's and SGLang's); each
  option letter's score is the best log-probability among the first token's alternatives that spell it (" B",
  "**B"), -inf if none does. A server that returns no logprobs (`transformers serve` 5.x ignores the field) is
  an error that says to use mode: generate.
No tokenizer is at hand for a remote model, so token counts are a conservative estimate (`estimate_tokens`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any, Literal

from lessismore.endpoint import Endpoint, EndpointError
from lessismore.errors import BadValue
from lessismore.judge.protocol import Reply

Mode = Literal["logprobs", "generate"]
TOP_LOGPROBS = 20  # the most the OpenAI API returns per position
CHAT_OVERHEAD = 32  # tokens a server's chat template adds around one user message (ChatML: ~5; generous)
_DECOR = " \t\r\n*_`'\"()[]{}<>.,:;!▁Ġ"  # spaces, markdown, brackets and BPE/SentencePiece space marks around a letter


def estimate_tokens(text: str) -> int:
    """A token count no real tokenizer exceeds in practice: ASCII at 3 characters a token (English BPE averages
    about 4), and every other character at half a token per UTF-8 byte (CJK 1.5, emoji 2).

    >>> estimate_tokens("abcdefg"), estimate_tokens("日本"), estimate_tokens("")
    (3, 3, 0)
    """
    ascii_chars = sum(1 for c in text if c < "\x80")
    other_bytes = len(text.encode("utf-8")) - ascii_chars
    return math.ceil(ascii_chars / 3 + other_bytes / 2)


def letter(token: str) -> str:
    """A token's text without spaces and decoration, as compared with an option letter.

    >>> [letter(t) for t in [" B", "**A", "(C", "ĠB", "▁A", "Answer"]]
    ['B', 'A', 'C', 'B', 'A', 'Answer']
    """
    return token.strip(_DECOR)


def option_scores(top_logprobs: Sequence[dict[str, Any]], options: Sequence[str]) -> dict[str, float]:
    """Each option's best log-probability among the first token's alternatives (-inf: none spells it).

    >>> option_scores([{"token": "A", "logprob": -0.1}, {"token": " B", "logprob": -2.5},
    ...                {"token": "B", "logprob": -3.0}], ["A", "B", "C"])
    {'A': -0.1, 'B': -2.5, 'C': -inf}
    """
    scores = dict.fromkeys(options, -math.inf)
    for alt in top_logprobs:
        key = letter(str(alt["token"]))
        if key in scores:
            scores[key] = max(scores[key], float(alt["logprob"]))
    return scores


def usage_of(data: dict[str, Any]) -> dict[str, int]:
    """prompt_tokens / completion_tokens as the server counted them ({} when it sent none).

    >>> usage_of({"usage": {"prompt_tokens": 7, "completion_tokens": 1, "total_tokens": 8}})
    {'prompt_tokens': 7, 'completion_tokens': 1}
    """
    usage = data.get("usage") or {}
    return {k: int(usage[k]) for k in ("prompt_tokens", "completion_tokens") if isinstance(usage.get(k), int)}


class OpenAIJudge:
    """judge.protocol.Backend over POST {base_url}/chat/completions; one request a message."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        mode: Mode,
        max_new_tokens: int = 16,
        temperature: float = 0.0,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 4,
        timeout_s: float = 120.0,
        max_retries: int = 5,
        context_tokens: int = 8192,
        backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        section: str = "judge.judges[0].openai",
        progress: bool = False,
    ):
        judge_key = section.removesuffix(".openai")  # the judge's own keys (model, mode) sit one level up
        if mode not in ("logprobs", "generate"):
            raise BadValue(f"{judge_key}.mode is {mode!r}: use 'logprobs' or 'generate'")
        rejected = f"the server rejected a field: if it is logprobs or top_logprobs, set {judge_key}.mode: generate"
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
            model_key=f"{judge_key}.model",
            fixes={400: rejected, 422: rejected} if mode == "logprobs" else None,
            progress=progress,
        )
        self.model, self.mode, self.judge_key = model, mode, judge_key
        self.max_new_tokens, self.temperature = max_new_tokens, temperature
        room = 1 if mode == "logprobs" else max_new_tokens  # the reply shares the context with the message
        self.max_input_tokens = context_tokens - CHAT_OVERHEAD - room
        if self.max_input_tokens <= 0:
            raise BadValue(f"{judge_key}.context_tokens = {context_tokens} leaves no room for a message")

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    def ask_batches(
        self, messages: Sequence[str], options: Sequence[str], seeds: Sequence[int]
    ) -> Iterator[tuple[list[int], list[Reply]]]:
        """([i], [reply]) per message as its request finishes; the first permanent failure stops the rest."""
        bodies = [self._body(m, s) for m, s in zip(messages, seeds, strict=True)]
        for i, reply in self.endpoint.run(bodies, lambda data: self._reply(data, options), desc="judge"):
            yield [i], [reply]

    def _body(self, message: str, seed: int) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "user", "content": message}],
            "temperature": self.temperature,
        }
        if self.temperature > 0:  # greedy needs no seed; some servers reject one
            body["seed"] = seed
        if self.mode == "logprobs":
            body.update(max_tokens=1, logprobs=True, top_logprobs=TOP_LOGPROBS)
        else:
            body["max_tokens"] = self.max_new_tokens
        return body

    def _reply(self, data: Any, options: Sequence[str]) -> Reply:
        """A chat-completions JSON reply -> Reply; a reply that is no chat completion raises ValueError (retried)."""
        try:
            choice = data["choices"][0]
            text = choice["message"]["content"] or ""  # null: a reasoning model spent max_tokens thinking
            usage = usage_of(data)
        except (KeyError, IndexError, TypeError, AttributeError) as err:
            raise ValueError(f"not a chat completion (no choices[0].message): {err!r}") from None
        if not isinstance(text, str):
            raise ValueError("choices[0].message.content is not text")
        if self.mode == "generate":
            return Reply(text=text.strip(), usage=usage)
        try:
            first = ((choice.get("logprobs") or {}).get("content") or [None])[0]
            alternatives = [first, *(first.get("top_logprobs") or [])] if first else []
            scores = option_scores(alternatives, options)
        except (KeyError, TypeError, AttributeError) as err:
            raise ValueError(f"unreadable logprobs: {err!r}") from None
        if not alternatives:
            raise EndpointError(
                f"{self.endpoint.url}: the server answered without log-probabilities (choices[0].logprobs is empty; "
                f"it ignores logprobs=true); set {self.judge_key}.mode: generate for this server"
            )
        return Reply(text=text.strip(), scores=scores, usage=usage)
