"""A judge entry of params (judge.judges[i]) -> a ready Backend and its JudgeRun (name, fingerprint, price).

Used by the judge stage, the train stage's `select: judge` and curate's raters (scores/scorers.py). The one place
that reads a JudgeSpec (or a config.Rater): the cores under judge/ take the plain Backend and JudgeRun it returns.
The backend is lazy: a local model is loaded, or an HTTP client opened, only when the first uncached item is asked,
so a re-run with a warm cache costs nothing. The fingerprint hashes everything that decides a verdict (for a local
judge, the weights' hash; for a served one, the served model's name) and nothing that does not (the judge's
display name, the URL, the key, concurrency).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from lessismore.errors import BadValue, NotFound
from lessismore.judge import load_template
from lessismore.judge.protocol import Backend, JudgeRun, Reply
from lessismore.records import content_id

OPENAI_CONTEXT = 8192  # tokens assumed for a served judge when judge.judges[].context_tokens is 0


class LazyBackend:
    """A Backend whose real backend is built on first use (model load, HTTP client)."""

    def __init__(self, build: Callable[[], Backend]) -> None:
        self._build, self._real = build, None

    @property
    def real(self) -> Backend:
        if self._real is None:
            self._real = self._build()
        return self._real

    @property
    def max_input_tokens(self) -> int:
        return self.real.max_input_tokens

    def count_tokens(self, text: str) -> int:
        return self.real.count_tokens(text)

    def ask_batches(
        self, messages: Sequence[str], options: Sequence[str], seeds: Sequence[int]
    ) -> Iterator[tuple[list[int], list[Reply]]]:
        if not messages:  # nothing to ask: do not load anything
            return iter(())
        return self.real.ask_batches(messages, options, seeds)


def open_judge(
    spec: Any, model_dirs: Mapping[str, Path], seed: int, section: str = "judge.judges[0]"
) -> tuple[LazyBackend, JudgeRun]:
    """(backend, run) for one config.JudgeSpec (or config.Rater) found at params key `section`; `model_dirs`: "base"
    etc. -> folder. A 5-level template (Template.levels) with mode logprobs is refused here, before any call: its
    labels are not single letters to score."""
    template = getattr(spec, "template", "")  # a rater (config.Rater) has its own templates, all 1-6 scores
    if template and spec.mode == "logprobs" and load_template(template, key=f"{section}.template").levels == 5:
        raise BadValue(
            f"{section}.mode: template {template!r} asks for 5-level labels ([[A>>B]] ... [[B>>A]]), which are not "
            "single letters to score; use mode generate"
        )
    decoding = {
        "mode": spec.mode,
        "temperature": spec.temperature,
        "max_new_tokens": spec.max_new_tokens,
        "context_tokens": spec.context_tokens,
        "seed": seed if spec.temperature > 0 else None,
    }
    if spec.backend == "local":
        model_dir = Path(model_dirs.get(spec.model, spec.model))
        if not model_dir.exists():
            raise NotFound(f"{section}.model: {model_dir} not found; use base or a model folder")
        from lessismore.models import checkpoint_hash

        identity = {"backend": "local", "weights": checkpoint_hash(model_dir), **decoding}
        backend = LazyBackend(lambda: _local(spec, model_dir))
    else:
        identity = {"backend": "openai", "model": spec.model, **decoding}
        backend = LazyBackend(lambda: _openai(spec, section))
    price = spec.price
    calibrate = getattr(spec, "calibrate", False)  # a rater (config.Rater) has no option letters to calibrate
    run = JudgeRun(spec.name, content_id(identity), calibrate, price.input_per_mtok, price.output_per_mtok)
    return backend, run


def _local(spec: Any, model_dir: Path) -> Backend:
    from lessismore.judge.local import LocalBackend
    from lessismore.models import load_causal_lm

    if spec.temperature > 0:
        raise BadValue(f"judge {spec.name}: a local judge decodes greedily; set temperature: 0")
    model, tokenizer = load_causal_lm(model_dir, device="auto")
    return LocalBackend(
        model,
        tokenizer,
        mode=spec.mode,
        max_new_tokens=spec.max_new_tokens,
        batch_size=spec.batch_size,
        context_tokens=spec.context_tokens,
    )


def _openai(spec: Any, section: str) -> Backend:
    from lessismore.judge.openai import OpenAIJudge

    o = spec.openai
    return OpenAIJudge(
        o.base_url,
        spec.model,
        mode=spec.mode,
        max_new_tokens=spec.max_new_tokens,
        temperature=spec.temperature,
        api_key_env=o.api_key_env,
        concurrency=o.concurrency,
        timeout_s=o.timeout_s,
        max_retries=o.max_retries,
        context_tokens=spec.context_tokens or OPENAI_CONTEXT,
        section=f"{section}.openai",
        progress=False,
    )
