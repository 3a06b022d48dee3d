"""A local transformers judge backend: the judge model runs in this process (the demo's judge is the base model).

Sits under judge/protocol.py, which renders the template, fits it to `max_input_tokens` and maps replies to
verdicts. Two modes:
- "logprobs": ONE forward pass over the chat prompt; the reply is the next-token log-probabilities of the option
  letters ("A", "B", "C" or "E", "P", "F"). Cheap and never unparsable; the verdict is their argmax.
- "generate": a short greedy reply, read by judge/parse.py.
Batches (`batch_size` consecutive messages; protocol.py sorts them by length first) are left-padded so every row's
last position is its own last token. Decoding is greedy, so the content-derived seeds are not needed here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Literal

from lessismore.errors import BadValue
from lessismore.judge.protocol import Reply

Mode = Literal["logprobs", "generate"]


def chat_text(tokenizer: Any, message: str, answer_prefix: str = "") -> str:
    """The full model input: the user turn in the tokenizer's chat template, then the assistant's opening."""
    if getattr(tokenizer, "chat_template", None):
        convo = [{"role": "user", "content": message}]
        return tokenizer.apply_chat_template(convo, tokenize=False, add_generation_prompt=True) + answer_prefix
    return message + "\n\n" + answer_prefix  # a base model without a chat template: plain continuation


def option_token_ids(tokenizer: Any, context: str, options: Sequence[str]) -> list[int]:
    """The token each option letter starts with, right after `context` (so BPE merges with the context count)."""
    base = tokenizer(context, add_special_tokens=False).input_ids
    ids = []
    for option in options:
        full = tokenizer(context + option, add_special_tokens=False).input_ids
        if full[: len(base)] != base or len(full) == len(base):
            raise BadValue(
                f"option {option!r} merges with the prompt's last token; "
                "use an answer prefix that ends in neither a space nor a letter"
            )
        ids.append(full[len(base)])
    if len(set(ids)) != len(ids):
        raise BadValue(f"options {list(options)} share a first token in this tokenizer; use distinct letters")
    return ids


class LocalBackend:
    """judge.protocol.Backend over an in-memory (model, tokenizer) pair."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        mode: Mode = "logprobs",
        max_new_tokens: int = 16,
        answer_prefix: str = "",
        batch_size: int = 4,
        context_tokens: int = 0,
    ) -> None:
        if mode not in ("logprobs", "generate"):
            raise BadValue(f"judge mode {mode!r}: use 'logprobs' or 'generate' (params judge.mode)")
        if tokenizer.pad_token_id is None:  # left padding needs some pad id; it is masked out anyway
            tokenizer.pad_token = tokenizer.eos_token
        self.model, self.tokenizer, self.mode = model.eval(), tokenizer, mode
        self.max_new_tokens, self.answer_prefix = max_new_tokens, answer_prefix
        self.batch_size = max(1, batch_size)
        # tokens the model can attend to (a param may lower it, e.g. to bound memory)
        context = context_tokens or getattr(model.config, "max_position_embeddings", None) or 2048
        overhead = self.count_tokens(chat_text(tokenizer, "", answer_prefix))  # chat-template tokens around a message
        room = max_new_tokens if mode == "generate" else 1
        self.max_input_tokens = context - overhead - room

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False).input_ids)

    def ask_batches(
        self, messages: Sequence[str], options: Sequence[str], seeds: Sequence[int] = ()
    ) -> Iterator[tuple[list[int], list[Reply]]]:
        for start in range(0, len(messages), self.batch_size):
            idx = list(range(start, min(start + self.batch_size, len(messages))))
            texts = [chat_text(self.tokenizer, messages[i], self.answer_prefix) for i in idx]
            yield idx, self._scores(texts, options) if self.mode == "logprobs" else self._generate(texts)

    def _encode(self, texts: list[str]) -> Any:
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False)
        return enc.to(self.model.device)

    def _scores(self, texts: list[str], options: Sequence[str]) -> list[Reply]:
        import torch

        ids = option_token_ids(self.tokenizer, texts[0], options)  # every text ends with the same assistant opening
        enc = self._encode(texts)
        # With left padding, positions must count real tokens only, or each row would see shifted positions.
        positions = (enc.attention_mask.cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            try:  # logits_to_keep=1: only the last position's logits, not (batch, seq, vocab)
                out = self.model(**enc, position_ids=positions, logits_to_keep=1)
            except TypeError:  # an architecture without logits_to_keep
                out = self.model(**enc, position_ids=positions)
        logp = out.logits[:, -1, :].float().log_softmax(-1)[:, ids].tolist()
        used = enc.attention_mask.sum(-1).tolist()
        return [
            Reply(scores=dict(zip(options, row, strict=True)), usage={"prompt_tokens": int(n), "completion_tokens": 0})
            for row, n in zip(logp, used, strict=True)
        ]

    def _generate(self, texts: list[str]) -> list[Reply]:
        import torch
        from transformers import GenerationConfig

        enc = self._encode(texts)
        greedy = GenerationConfig(
            max_new_tokens=self.max_new_tokens,
            do_sample=False,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.model.generation_config.eos_token_id or self.tokenizer.eos_token_id,
        )
        with torch.inference_mode():
            out = self.model.generate(**enc, generation_config=greedy)
        new_ids = out[:, enc.input_ids.shape[1] :]
        new = self.tokenizer.batch_decode(new_ids, skip_special_tokens=True)
        made = (new_ids != self.tokenizer.pad_token_id).sum(-1).tolist()  # pads after an early stop are not tokens
        used = enc.attention_mask.sum(-1).tolist()
        return [
            Reply(text=self.answer_prefix + t, usage={"prompt_tokens": int(n), "completion_tokens": int(m)})
            for t, n, m in zip(new, used, made, strict=True)
        ]
