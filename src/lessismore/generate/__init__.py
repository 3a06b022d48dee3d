"""The generate stage's library: models answer held-out prompts (outputs/responses/<model>.jsonl).

A backend is anything that follows the `GenerateBackend` Protocol: `generate_batches(prompts)` yields each batch
as it finishes (so the stage can save it at once and a crash loses nothing already answered), and
`generate(prompts)` returns every answer in input order. Backends: transformers (batched, transformers_backend.py),
any OpenAI-compatible server (openai_backend.py) and vLLM (vllm_backend.py, an optional GPU extra).
store.py makes generation resumable; baselines.py imports published answers; lessismore.models loads checkpoints.
This module stays import-light: torch, transformers and vllm are imported inside the functions that use them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

FinishReason = Literal["eot", "length"]  # eot: the model closed its turn; length: cut at max_new_tokens


@dataclass(frozen=True)
class GenResult:
    """One answer: the text up to (not including) the end-of-turn token, and why generation stopped."""

    text: str
    new_tokens: int  # tokens generated, the end-of-turn token included when there was one
    finish_reason: FinishReason
    meta: dict[str, Any] = field(default_factory=dict)  # backend facts for Response.meta: usage, seed, raw reason


Batch = tuple[list[int], list[GenResult]]  # indices into the prompts, and their answers in the same order


class GenerateBackend(Protocol):
    """Answers user prompts (single-turn, chat-formatted by the backend or the server)."""

    def generate_batches(self, prompts: list[str]) -> Iterator[Batch]:
        """Yield each batch as soon as it is done; every index of `prompts` exactly once, in any order."""
        ...

    def generate(self, prompts: list[str]) -> list[GenResult]:
        """Every answer, in the order of `prompts`."""
        ...


def collect(batches: Iterable[Batch], n: int) -> list[GenResult]:
    """Put streamed batches back in input order; a backend that skipped or repeated an index is a bug.

    >>> collect([([1], [GenResult("b", 1, "eot")]), ([0], [GenResult("a", 2, "length")])], 2)[0].text
    'a'
    """
    results: list[GenResult | None] = [None] * n
    for idx, res in batches:
        for i, r in zip(idx, res, strict=True):
            assert results[i] is None, f"backend answered prompt {i} twice"
            results[i] = r
    missing = [i for i, r in enumerate(results) if r is None]
    assert not missing, f"backend never answered prompts {missing[:5]}"
    return results  # type: ignore[return-value]  # checked just above


__all__ = ["Batch", "FinishReason", "GenResult", "GenerateBackend", "collect"]
