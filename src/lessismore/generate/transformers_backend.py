"""Batched generation with transformers: the generate stage's default backend (and the local judge's sampler).

Prompts are rendered with the model's chat template (add_generation_prompt), sorted by length so each batch pads
little, LEFT-padded (decoder-only models continue from the right edge) and sampled with LIMA's decoding: nucleus
top_p, temperature, repetition penalty, no top-k. Generation stops at the end-of-turn token (<|im_end|>).
Each batch is seeded from the run seed and its own prompts, so a rerun reproduces every text exactly.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from lessismore.errors import BadValue
from lessismore.generate import Batch, GenResult, collect
from lessismore.records import content_id
from lessismore.train.collate import end_of_turn_id


def render_prompt(tokenizer: Any, prompt: str) -> str:
    """A single-turn user prompt as the model sees it, ending with the assistant header."""
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
    )


def batch_seed(seed: int, texts: Sequence[str]) -> int:
    """A batch's RNG seed: depends on the run seed and the batch's prompts, not on batch order. 63 bits."""
    return int(content_id(seed, list(texts)), 16) % (1 << 63)


def length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length, longest first (an out-of-memory shows up at once).

    >>> length_batches([3, 9, 1, 7], 2)
    [[1, 3], [0, 2]]
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


class TransformersBackend:
    """`GenerateBackend` over an in-memory causal LM (see models.load_causal_lm)."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        max_new_tokens: int,
        top_p: float,
        temperature: float,
        repetition_penalty: float,
        seed: int,
        batch_size: int = 8,
        progress: bool = False,
    ):
        if batch_size <= 0 or max_new_tokens <= 0:
            raise BadValue("generate.batch_size and generate.max_new_tokens must be > 0")
        self.model, self.tokenizer = model, tokenizer
        self.decoding = {  # top_k 0: pure nucleus sampling as in LIMA (HF would default to top_k 50)
            "do_sample": True,
            "top_p": top_p,
            "top_k": 0,
            "temperature": temperature,
            "repetition_penalty": repetition_penalty,
            "max_new_tokens": max_new_tokens,
        }
        self.seed, self.batch_size, self.progress = seed, batch_size, progress
        self.eot_id = end_of_turn_id(tokenizer)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eot_id

    def generate(self, prompts: list[str]) -> list[GenResult]:
        """Answers in the order of `prompts`."""
        return collect(self.generate_batches(prompts), len(prompts))

    def generate_batches(self, prompts: list[str]) -> Iterator[Batch]:
        """(indices, answers) for each length-sorted batch, as soon as it is done."""
        from tqdm.auto import tqdm

        texts = [render_prompt(self.tokenizer, p) for p in prompts]
        lengths = [len(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]
        bar = tqdm(length_batches(lengths, self.batch_size), desc="generate", unit="batch", disable=not self.progress)
        new_tokens = 0
        for idx in bar:
            results = self._generate_batch([texts[i] for i in idx])
            new_tokens += sum(r.new_tokens for r in results)
            bar.set_postfix(new_tokens=new_tokens)
            yield idx, results

    def _generate_batch(self, texts: list[str]) -> list[GenResult]:
        import torch

        self.tokenizer.padding_side = "left"
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        enc = enc.to(self.model.device)
        devices = [self.model.device] if self.model.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.inference_mode():  # leave the caller's RNG untouched
            torch.manual_seed(batch_seed(self.seed, texts))
            out = self.model.generate(**enc, **self.decoding, eos_token_id=self.eot_id, pad_token_id=self.pad_id)
        new = out[:, enc["input_ids"].shape[1] :].tolist()
        return [self._result(row) for row in new]

    def _result(self, row: list[int]) -> GenResult:
        if self.eot_id in row:
            n = row.index(self.eot_id) + 1
            body, reason = row[: n - 1], "eot"
        else:  # never closed its turn: ran to max_new_tokens (only finished rows get padded)
            n = len(row)
            body, reason = row, "length"
        return GenResult(self.tokenizer.decode(body, skip_special_tokens=True).strip(), n, reason)
