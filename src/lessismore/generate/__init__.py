"""The generate stage's library: models answer held-out prompts (outputs/responses/<model>.jsonl).

A backend is anything with `generate(prompts) -> list[GenResult]` (the `GenerateBackend` Protocol): the batched
transformers backend lives in transformers_backend.py; OpenAI-compatible and vLLM backends plug in the same way.
Loading checkpoints (base, full fine-tune, or a LoRA adapter merged onto its base) lives in loading.py.
This module stays import-light: torch and transformers are imported inside the functions that use them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

FinishReason = Literal["eot", "length"]  # eot: the model closed its turn; length: cut at max_new_tokens


@dataclass(frozen=True)
class GenResult:
    """One answer: the text up to (not including) the end-of-turn token, and why generation stopped."""

    text: str
    new_tokens: int  # tokens generated, the end-of-turn token included when there was one
    finish_reason: FinishReason


class GenerateBackend(Protocol):
    """Answers user prompts (single-turn, chat-formatted by the backend); results come back in input order."""

    def generate(self, prompts: list[str]) -> list[GenResult]: ...


__all__ = ["FinishReason", "GenResult", "GenerateBackend"]
