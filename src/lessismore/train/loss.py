"""The training loss without the full-vocabulary logits: LIMA's response-only cross-entropy, in chunks.

A causal LM's forward ends in its output layer: logits of batch x length x vocabulary floats (SmolLM2: 49,152
words; 4 x 512 tokens -> 400 MB in fp32), a shifted copy of them, log-softmax's output for the backward, and their
gradients. Here the forward stops at the hidden states
(the output layer is swapped for an identity while the model runs, so DDP, peft and accelerate's autocast wrap the
call as before), and the loss runs over the labelled positions only, `chunk` of them at a time.

When the output layer is a plain matrix (a Linear without bias: every Llama-style model, tied or not), each chunk's
gradient is taken in the forward (lean.FusedHeadLoss): its logits, softmax minus the one-hot target in place, and
from that the gradient of the hidden states (and of the output matrix where it trains). One chunk's logits exist at
once, about once (the checkpointed path below holds logits, log-softmax's output and both their gradients in its
backward: ~4x), and the output matrix runs twice a chunk, not three times. That is what Liger's fused linear
cross-entropy and Apple's cut-cross-entropy do in Triton kernels, GPU only; this is plain torch, for the CPUs this
project trains on too. Any other output layer (peft's trainable-token rows for a new EOT) takes the checkpointed
path: each chunk's logits recomputed in the backward (torch.utils.checkpoint) rather than kept.
Measured on one LoRA micro-batch of SmolLM2-135M (4 x 512 packed tokens, fp32, 2 cores, lean layers; peak RSS,
seconds a micro-batch): checkpointed chunks of 1,024 3,493 MiB, 17.6 s; fused 1,024 3,259 MiB, 16.8 s; fused 512
3,104 MiB, 16.2 s; fused 256 (params' default) 3,008 MiB, 15.3 s (benchmarks/RESULTS.md).
Under FSDP the output layer's weights are sharded outside the model's own forward: there the loss takes the plain
path (chunk 0), which is also what `train.loss_chunk: 0` asks for everywhere.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

from lessismore.train.collate import IGNORE_INDEX


def output_owner(model: Any) -> Any:
    """The transformers model that owns the output layer, under a peft wrapper or not."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


@contextlib.contextmanager
def hidden_states_out(owner: Any) -> Iterator[Any]:
    """While inside, `owner`'s forward returns its last hidden states where the logits were; yields the output
    layer (a peft wrapper of it included, e.g. trainable token rows for a new EOT), to apply chunk by chunk."""
    head = owner.get_output_embeddings()
    owner.set_output_embeddings(_identity())
    try:
        yield head
    finally:
        owner.set_output_embeddings(head)


@functools.cache
def _identity() -> Any:
    """One identity module for every swap: torch.compile guards on the module object, so a new one each forward
    would recompile the model each step."""
    import torch

    return torch.nn.Identity()


def _chunk_loss(head: Any, hidden: Any, targets: Any) -> Any:
    import torch.nn.functional as F

    return F.cross_entropy(head(hidden).float(), targets, reduction="sum")


def _plain_matrix(head: Any) -> Any:
    """The output layer's weight when it is a bare matrix (nn.Linear without bias), else None."""
    import torch

    if type(head) is torch.nn.Linear and head.bias is None:
        return head.weight
    return None


def response_loss(model: Any, owner: Any, batch: dict[str, Any], chunk: int) -> Any:
    """The summed cross-entropy of every labelled next token of `batch` (input_ids, labels, and attention_mask or
    position_ids for packed rows): token t predicts token t + 1. `chunk` > 0 computes it `chunk` positions at a
    time from the hidden states, with `owner` (output_owner of the unwrapped model) lending its output layer; 0
    from the model's full logits. `model` is what runs the forward (DDP's wrapper, say)."""
    import torch.nn.functional as F
    from torch.utils.checkpoint import checkpoint

    inputs = {k: v for k, v in batch.items() if k != "labels"}
    targets = batch["labels"][:, 1:].flatten()
    if chunk <= 0:
        logits = model(**inputs, use_cache=False).logits[:, :-1].flatten(0, 1).float()
        return F.cross_entropy(logits, targets, ignore_index=IGNORE_INDEX, reduction="sum")
    with hidden_states_out(owner) as head:
        hidden = model(**inputs, use_cache=False).logits
    keep = targets != IGNORE_INDEX
    hidden, targets = hidden[:, :-1].flatten(0, 1)[keep], targets[keep]
    weight = _plain_matrix(head)
    if weight is not None:
        from lessismore.train.lean import FusedHeadLoss

        return FusedHeadLoss.apply(hidden, weight, targets, chunk)
    total = hidden.sum().float() * 0.0  # a batch without labels still joins the backward (an empty rank under DDP)
    for start in range(0, len(targets), chunk):
        piece = slice(start, start + chunk)
        total = total + checkpoint(_chunk_loss, head, hidden[piece], targets[piece], use_reentrant=False)
    return total
