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

`score_ifd` is the entry point: it scores only what the cache (judge/cache.py KeyedCache) lacks, in buckets of
`batch_size` examples of similar length (sorted by tokens, so a batch pads little), two forward passes a bucket
(with and without the prompt), in inference mode, logits only where a label is, and flushes each bucket's rows
before the next; the result comes back in input order. A row without a labelled token (no assistant turn) has no
score: None. A score depends on the batch it was computed in only to float rounding (padding is masked; relative
differences of 1e-7 on the tiny test model, up to 2e-4 on SmolLM2 against one pass an example), so a resumed run
equals an uninterrupted one to that tolerance.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from lessismore.judge.cache import KeyedCache
from lessismore.records import Example, Message
from lessismore.scores import score_key
from lessismore.train.collate import IGNORE_INDEX, collate, encode_example

CE_CHUNK = 2048  # positions a cross-entropy call: bounds its softmax copy to 2048 x vocab floats (400 MB, SmolLM2)


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


def ifd_key(example: Example, fingerprint: str, max_tokens: int) -> str:
    """The cache key of one IFD score: the scorer (`fingerprint`: its weights and tokenizer), the cut, the turns."""
    return score_key("ifd", fingerprint, max_tokens, [[m.role, m.content] for m in example.messages])


def score_ifd(
    examples: Sequence[Example],
    model: Any,
    tokenizer: Any,
    cache: KeyedCache,
    *,
    fingerprint: str,
    max_tokens: int,
    batch_size: int,
    progress: Callable[[int], None] | None = None,
) -> list[Ifd | None]:
    """Each example's IFD, from `cache` where it has it, else from `model` and `tokenizer` (the chat template
    training uses), written to `cache` a bucket at a time. `fingerprint` names the scorer: it must change whenever
    the weights or the tokenizer do (e.g. models.checkpoint_hash of the model folder). `progress(n)` is called after
    each bucket with the examples it scored (the cached ones are never reported)."""
    keys = [ifd_key(ex, fingerprint, max_tokens) for ex in examples]
    todo = [k for k in dict.fromkeys(keys) if k not in cache]
    first = dict(zip(reversed(keys), reversed(examples), strict=True))  # key -> its first example
    encoded = {
        k: (
            encode_example(first[k].messages, tokenizer, max_tokens),
            encode_example(response_only(first[k]), tokenizer, max_tokens),
        )
        for k in todo
    }
    todo.sort(key=lambda k: len(encoded[k][0]["input_ids"]))  # ~2 ms an example: cheap next to a forward pass
    for start in range(0, len(todo), batch_size):
        bucket = todo[start : start + batch_size]
        a = mean_losses([encoded[k][0] for k in bucket], model, tokenizer, batch_size=len(bucket))
        b = mean_losses([encoded[k][1] for k in bucket], model, tokenizer, batch_size=len(bucket))
        cache.put([_row(key, x, y) for key, x, y in zip(bucket, a, b, strict=True)])
        if progress:
            progress(len(bucket))
    return [_ifd_of(cache.get(k)) for k in keys]


def ifd_scores(
    examples: Sequence[Example],
    model: Any,
    tokenizer: Any,
    *,
    max_tokens: int,
    batch_size: int,
    progress: Callable[[int], None] | None = None,
) -> list[Ifd | None]:
    """`score_ifd` with nothing cached and nothing kept: for a one-off look at a few examples."""
    return score_ifd(
        examples,
        model,
        tokenizer,
        KeyedCache(None),
        fingerprint="",
        max_tokens=max_tokens,
        batch_size=batch_size,
        progress=progress,
    )


def _row(key: str, with_prompt: tuple[float, int], alone: tuple[float, int]) -> dict[str, Any]:
    (a, ta), (b, tb) = with_prompt, alone
    if not (ta and tb):
        return {"key": key, "kind": "ifd", "score": None, "raw": "", "meta": {}}
    meta = {"with_prompt": a, "without_prompt": b, "tokens": ta, "tokens_alone": tb}
    return {"key": key, "kind": "ifd", "score": a / b if b > 0 else None, "raw": "", "meta": meta}


def _ifd_of(row: dict[str, Any] | None) -> Ifd | None:
    assert row is not None, "every example was scored or cached"
    return Ifd(**row["meta"]) if row["meta"] else None


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
            batch = {k: v.to(model.device) for k, v in collate([encoded[i] for i in rows], pad).items()}
            targets = batch["labels"][:, 1:]
            keep = targets != IGNORE_INDEX  # positions whose next token is labelled: the only logits needed
            sums = torch.zeros(len(rows), dtype=torch.float64, device=targets.device)
            if keep.any():
                logits = _labelled_logits(model, batch, keep)
                chunks = (t.split(CE_CHUNK) for t in (logits, targets[keep], keep.nonzero()[:, 0]))
                for part, ys, who in zip(*chunks, strict=True):
                    loss = torch.nn.functional.cross_entropy(part.float(), ys, reduction="none")
                    sums.index_add_(0, who, loss.double())
            for i, total, count in zip(rows, sums.tolist(), keep.sum(dim=1).tolist(), strict=True):
                out[i] = (total / count if count else 0.0, int(count))
            if progress:
                progress(len(rows))
    return out


def _labelled_logits(model: Any, batch: dict[str, Any], keep: Any) -> Any:
    """Logits (n, vocab) at the `keep` positions only, in row-major order. The model's own forward does the
    projection (so a model's logit scaling or soft-capping stays), told by `logits_to_keep` (a boolean mask in
    transformers 5) to skip the prompt and the padding: the vocabulary projection and its softmax are a fifth of a
    small model's work and most of its memory ((batch, tokens, 49,152) floats for SmolLM2)."""
    import torch

    mask = torch.zeros_like(batch["input_ids"], dtype=torch.bool)
    mask[:, :-1] = keep
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    try:
        logits = model(**inputs, logits_to_keep=mask).logits
    except TypeError:  # an architecture without logits_to_keep: every position, then pick
        logits = model(**inputs).logits[mask]
    return logits.reshape(-1, logits.shape[-1])
