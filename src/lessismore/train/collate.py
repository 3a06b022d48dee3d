"""Chat-format collation for the train stage: Example messages -> token ids + loss labels, then padded batches.

LIMA trains on the responses only, with an end-of-turn (EOT) token after every utterance. Here the tokenizer's own
chat template (ChatML: `<|im_end|>` closes every turn; eot.py may swap in a new `<|eot|>`) renders the
conversation, and every token outside an assistant turn gets the label -100 (ignored by the loss). Each assistant
turn's EOT token stays labelled, so the model learns to stop; the template's `<|im_start|>assistant\\n` header and
the newline after EOT stay masked.

Assistant spans are found on characters, not on token counts: the template is rendered incrementally (the
conversation up to a turn, with and without that turn) and the character spans are mapped onto the tokens of the
full rendering through the tokenizer's offsets. That is robust to BPE merges across a turn boundary and to
templates that inject a default system prompt (SmolLM2 does when the conversation has none).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lessismore.errors import BadValue

IGNORE_INDEX = -100  # torch cross_entropy's default ignore_index
EOT_TOKEN = "<|im_end|>"  # ChatML's end of turn; LIMA's EOT when params train.eot is "template"
_PROBE = ({"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."})


def end_of_turn_id(tokenizer: Any) -> int:
    """The id that closes an assistant turn: the first special token the chat template writes after the answer.

    That follows the template wherever it goes (`<|im_end|>` for ChatML, `<|eot|>` once eot.prepare_eot swapped
    it in, `<|eot_id|>`, `</s>`...). Without a template, or when the probe finds none: `<|im_end|>` when the
    vocabulary has it, else eos.
    """
    if getattr(tokenizer, "chat_template", None):
        try:
            text = _render(tokenizer, list(_PROBE))
        except Exception:  # a template may raise anything on a conversation it refuses: fall back below
            text = ""
        tail = text[text.rfind("A.") + 2 :] if "A." in text else ""
        special = set(tokenizer.all_special_ids) | {i for i, t in tokenizer.added_tokens_decoder.items() if t.special}
        for tok_id in tokenizer(tail, add_special_tokens=False)["input_ids"] if tail else []:
            if tok_id in special:
                return tok_id
    vocab = tokenizer.get_vocab()
    if EOT_TOKEN in vocab:
        return vocab[EOT_TOKEN]
    if tokenizer.eos_token_id is None:
        raise BadValue("the tokenizer has neither <|im_end|> nor an eos token; give the base model a chat template")
    return tokenizer.eos_token_id


def _as_dicts(messages: Sequence[Any]) -> list[dict[str, str]]:
    return [m if isinstance(m, dict) else {"role": m.role, "content": m.content} for m in messages]


def _render(tokenizer: Any, messages: list[dict[str, str]], generation_prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)


def assistant_char_spans(messages: Sequence[Any], tokenizer: Any) -> tuple[str, list[tuple[int, int]]]:
    """The full rendering and the [start, end) character span of each assistant turn's content + its EOT."""
    msgs = _as_dicts(messages)
    if tokenizer.chat_template is None:
        raise BadValue("the tokenizer has no chat_template; the model stage must save one (see base_model.py)")
    full = _render(tokenizer, msgs)
    eot = tokenizer.convert_ids_to_tokens(end_of_turn_id(tokenizer))
    spans = []
    for i, msg in enumerate(msgs):
        if msg["role"] != "assistant":
            continue
        head = _render(tokenizer, msgs[:i], generation_prompt=True)  # ends with the assistant header
        upto = _render(tokenizer, msgs[: i + 1])
        if not (full.startswith(head) and full.startswith(upto) and len(head) <= len(upto)):
            raise BadValue(
                f"the chat template does not render turn {i} as a prefix of the whole conversation; "
                "collation needs an incremental template such as ChatML"
            )
        start, end = len(head), len(upto)
        cut = full[start:end].rfind(eot)  # label up to and including EOT, not the template's newline after it
        spans.append((start, start + cut + len(eot) if cut >= 0 else end))
    return full, spans


def encode_example(messages: Sequence[Any], tokenizer: Any, max_tokens: int) -> dict[str, list[int]]:
    """Token ids and labels for one conversation, trimmed to `max_tokens` (LIMA trims to 2048).

    A token is labelled when any of its characters falls inside an assistant span, so a BPE token that straddles
    the header/content boundary is learned rather than lost. Everything else is IGNORE_INDEX.
    """
    if max_tokens <= 0:
        raise BadValue(f"max_tokens must be > 0, got {max_tokens}; set params train.max_tokens")
    text, spans = assistant_char_spans(messages, tokenizer)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    labels = []
    for tok_id, (s, e) in zip(ids, offsets, strict=True):
        inside = any(s < end and e > start for start, end in spans)
        labels.append(tok_id if inside else IGNORE_INDEX)
    return {"input_ids": list(ids[:max_tokens]), "labels": labels[:max_tokens]}


def collate(batch: Sequence[dict[str, list[int]]], pad_id: int) -> dict[str, Any]:
    """Right-pad a batch of encoded examples into tensors: input_ids, labels (pad -> -100), attention_mask."""
    import torch

    width = max(len(row["input_ids"]) for row in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, row in enumerate(batch):
        n = len(row["input_ids"])
        ids[i, :n] = torch.tensor(row["input_ids"], dtype=torch.long)
        labels[i, :n] = torch.tensor(row["labels"], dtype=torch.long)
        mask[i, :n] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def pack(rows: Sequence[dict[str, list[int]]], capacity: int) -> list[list[int]]:
    """Padding-free packing: the indices of `rows` grouped into bins of at most `capacity` tokens, first fit
    decreasing (longest first, each into the first bin with room; ties keep their order, so it is deterministic).
    A row longer than `capacity` gets a bin of its own (encode_example already trims to train.max_tokens).

    >>> pack([{"input_ids": [0] * n} for n in (5, 2, 4, 3)], 8)
    [[0, 3], [2, 1]]
    """
    bins: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(rows)), key=lambda i: -len(rows[i]["input_ids"])):
        n = len(rows[i]["input_ids"])
        slot = next((b for b, free in enumerate(room) if free >= n), None)
        if slot is None:
            bins.append([i])
            room.append(capacity - n)
        else:
            bins[slot].append(i)
            room[slot] -= n
    return bins


def collate_packed(bins: Sequence[Sequence[dict[str, list[int]]]], pad_id: int) -> dict[str, Any]:
    """Packed rows as tensors: input_ids, labels and position_ids, no attention_mask.

    Each example's positions restart at 0, which is how transformers' masking (masking_utils'
    find_packed_sequence_indices; FlashAttention's varlen path on GPU) keeps every example attending to itself
    only. Each example's first label is masked, so the previous example's last token never learns to predict it
    (LIMA's loss is unchanged: that first token is the template's header, never a response token). A row's tail
    padding is one more sequence of its own (positions from 0, labels ignored), so it touches no example either.
    """
    import torch

    width = max(sum(len(r["input_ids"]) for r in row) for row in bins)
    ids = torch.full((len(bins), width), pad_id, dtype=torch.long)
    labels = torch.full((len(bins), width), IGNORE_INDEX, dtype=torch.long)
    positions = torch.zeros((len(bins), width), dtype=torch.long)
    for b, row in enumerate(bins):
        at = 0
        for r in row:
            n = len(r["input_ids"])
            ids[b, at : at + n] = torch.tensor(r["input_ids"], dtype=torch.long)
            labels[b, at + 1 : at + n] = torch.tensor(r["labels"][1:], dtype=torch.long)
            positions[b, at : at + n] = torch.arange(n)
            at += n
        positions[b, at:] = torch.arange(width - at)
    return {"input_ids": ids, "labels": labels, "position_ids": positions}


class Collator:
    """A DataLoader collate_fn bound to the tokenizer's pad id."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, batch: Sequence[dict[str, list[int]]]) -> dict[str, Any]:
        return collate(batch, self.pad_id)
