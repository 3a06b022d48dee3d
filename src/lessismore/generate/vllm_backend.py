"""Generation with vLLM on a GPU: the generate stage's fast backend (params generate.backend: vllm).

An optional extra (`pip install lessismore[vllm]`): vllm is imported inside the class, so the rest of the package
never needs it. vLLM schedules its own continuous batches; this backend hands it `batch_size` prompts at a time
only so the stage can save each chunk as it finishes (a crash loses at most one chunk). A LoRA adapter directory
(models/finetuned after a LoRA run) is served on its base with vLLM's LoRA support, not merged.
LIMA decoding: nucleus top_p, temperature, repetition penalty, top_k off; one seed per prompt, so reruns repeat.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lessismore.errors import BadValue
from lessismore.generate import Batch, GenResult, collect
from lessismore.generate.openai_backend import prompt_seed
from lessismore.models import is_adapter, resolve_base

_FINISH = {"stop": "eot", "length": "length"}


def require_vllm() -> Any:
    """The vllm module, or an error that says how to get it (and that it needs a CUDA GPU)."""
    try:
        import vllm
    except ImportError as err:
        raise BadValue(
            "generate.backend: vllm needs the optional extra and a CUDA GPU: `pip install lessismore[vllm]` on a "
            "GPU machine, or set generate.backend: transformers (CPU/GPU) or openai (a served model)"
        ) from err
    import torch

    if not torch.cuda.is_available():
        raise BadValue("generate.backend: vllm needs a CUDA GPU and none is visible; use transformers here")
    return vllm


class VLLMBackend:
    """`GenerateBackend` over vllm.LLM; the checkpoint directory is loaded once, at construction."""

    def __init__(
        self,
        model_dir: str | Path,
        *,
        max_new_tokens: int,
        top_p: float,
        temperature: float,
        repetition_penalty: float,
        seed: int,
        batch_size: int = 256,
        max_model_len: int | None = None,
        gpu_memory_utilization: float = 0.9,
    ):
        vllm = require_vllm()
        model_dir = Path(model_dir)
        self.lora = None
        if is_adapter(model_dir):
            from vllm.lora.request import LoRARequest

            base = resolve_base(model_dir)
            self.llm = vllm.LLM(
                str(base),
                enable_lora=True,
                seed=seed,
                max_model_len=max_model_len,
                gpu_memory_utilization=gpu_memory_utilization,
            )
            self.lora = LoRARequest("final", 1, str(model_dir))
        else:
            self.llm = vllm.LLM(
                str(model_dir), seed=seed, max_model_len=max_model_len, gpu_memory_utilization=gpu_memory_utilization
            )
        self.sampling = dict(
            top_p=top_p,
            temperature=temperature,
            repetition_penalty=repetition_penalty,
            top_k=-1,
            max_tokens=max_new_tokens,
        )
        self.seed, self.batch_size, self._vllm = seed, batch_size, vllm

    def generate(self, prompts: list[str]) -> list[GenResult]:
        return collect(self.generate_batches(prompts), len(prompts))

    def generate_batches(self, prompts: list[str]) -> Iterator[Batch]:
        for start in range(0, len(prompts), self.batch_size):
            idx = list(range(start, min(start + self.batch_size, len(prompts))))
            chunk = [prompts[i] for i in idx]
            params = [self._vllm.SamplingParams(**self.sampling, seed=prompt_seed(self.seed, p)) for p in chunk]
            messages = [[{"role": "user", "content": p}] for p in chunk]
            outs = self.llm.chat(messages, params, lora_request=self.lora, use_tqdm=False)
            yield idx, [self._result(o.outputs[0]) for o in outs]

    @staticmethod
    def _result(out: Any) -> GenResult:
        reason = _FINISH.get(out.finish_reason, "eot")
        return GenResult(out.text.strip(), len(out.token_ids), reason, {"finish_reason_raw": out.finish_reason})  # type: ignore[arg-type]
