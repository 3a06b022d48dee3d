"""Instruction-following difficulty (IFD, Li et al. 2024 "From Quantity to Quality"; Superfiltering): a score per
candidate from the base model's own losses, for selection where there are no votes.

IFD = (mean loss of the response tokens given the prompt) / (mean loss of the same response without it). Near or
above 1 the instruction does not help the model predict the answer (the pair is loose, or the answer is generic);
well below 1 the answer follows from the instruction. The losses are computed as training computes them
(train/collate.py): the tokenizer's chat template, loss on the assistant turns and their end-of-turn token only
(LIMA's masking), the conversation cut at `max_tokens`. "Without the prompt" is the same conversation with every
user and system turn emptied (a template cannot render a conversation that starts with the assistant), so both
losses are over the same response tokens (unless the cut at `max_tokens` falls inside the response with the prompt
in front; the token counts are kept so a reader can see it).

Rows are scored in batches of similar length (sorted by tokens, so a batch pads little), in inference mode; the
result comes back in input order. A row without a labelled token (no assistant turn) has no score: None.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from lessismore.records import Example, Message
from lessismore.train.collate import IGNORE_INDEX, collate, encode_example


@dataclass(frozen=True)
class Ifd:
    """One candidate's losses (nats a response token) and their ratio."""

    with_prompt: float
    without_prompt: float
    tokens: int  # response tokens scored with the prompt in front
    tokens_alone: int  # and without it

    @property
    def ifd(self) -> float:
        return self.with_prompt / self.without_prompt if self.without_prompt > 0 else float("inf")


def response_only(example: Example) -> tuple[Message, ...]:
    """The conversation without its prompt: every turn but the assistant's emptied."""
    return tuple(m if m.role == "assistant" else Message(m.role, "") for m in example.messages)


def ifd_scores(
    examples: Sequence[Example],
    model: Any,
    tokenizer: Any,
    *,
    max_tokens: int,
    batch_size: int,
    progress: Callable[[int], None] | None = None,
) -> list[Ifd | None]:
    """Each example's IFD from `model` (a causal LM) and `tokenizer` (with the chat template training uses).
    `progress(n)` is called after each batch with the examples it scored."""
    with_prompt = [encode_example(ex.messages, tokenizer, max_tokens) for ex in examples]
    alone = [encode_example(response_only(ex), tokenizer, max_tokens) for ex in examples]
    losses = mean_losses([*with_prompt, *alone], model, tokenizer, batch_size=batch_size, progress=None)
    n = len(examples)
    out: list[Ifd | None] = []
    for k in range(n):
        (a, ta), (b, tb) = losses[k], losses[n + k]
        out.append(Ifd(a, b, ta, tb) if ta and tb else None)
    if progress:
        progress(n)
    return out


def mean_losses(
    encoded: Sequence[dict[str, list[int]]],
    model: Any,
    tokenizer: Any,
    *,
    batch_size: int,
    progress: Callable[[int], None] | None = None,
) -> list[tuple[float, int]]:
    """(mean next-token loss over the labelled tokens, how many) of each encoded row (collate.encode_example), in
    input order; (0.0, 0) for a row with no labelled token. Batches of similar length, no gradient."""
    import torch

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    order = sorted(range(len(encoded)), key=lambda i: (len(encoded[i]["input_ids"]), i))
    out: list[tuple[float, int]] = [(0.0, 0)] * len(encoded)
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            batch = collate([encoded[i] for i in rows], pad)
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            targets = batch["labels"][:, 1:]
            loss = torch.nn.functional.cross_entropy(
                logits[:, :-1].float().transpose(1, 2), targets, ignore_index=IGNORE_INDEX, reduction="none"
            )
            counts = (targets != IGNORE_INDEX).sum(dim=1)
            sums = loss.sum(dim=1)
            for i, total, count in zip(rows, sums.tolist(), counts.tolist(), strict=True):
                out[i] = (total / count if count else 0.0, int(count))
            if progress:
                progress(len(rows))
    return out
