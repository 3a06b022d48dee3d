"""params curate.scores -> the scorers a selection variant ranks by, ready to call on a list of candidates.

Sits in scores/, between the curate stage (which builds one `Scorers` from params and hands it to the funnel as a
plain function: examples -> {kind: [score or None]}) and the scorers themselves (ifd.py, rater.py). The models are
loaded, and a server is called, only for what the cache (data/scores.jsonl, judge/cache.py KeyedCache) lacks: a
re-run with the same candidates, scorers and templates loads nothing. Each kind shows a progress bar counting its
candidates, the cached ones included.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from lessismore.errors import NotFound
from lessismore.judge.cache import KeyedCache
from lessismore.records import Example, content_id

if TYPE_CHECKING:
    from lessismore.config import Scores

KINDS = ("quality", "complexity", "ifd")  # the scores curate.scores.weights may name
Scored = dict[str, list[float | None]]  # kind -> one score a candidate (None: none could be read)


def weights_for(variant: str, weights: Mapping[str, float]) -> dict[str, float]:
    """What a curate.variant ranks by: scored, the weights given (those not 0); ifd_only and quality_only, that one
    score; the other variants, nothing.

    >>> weights_for("scored", {"quality": 1.0, "complexity": 0.0, "ifd": 2.0}), weights_for("ifd_only", {})
    ({'quality': 1.0, 'ifd': 2.0}, {'ifd': 1.0})
    >>> weights_for("lima", {"quality": 1.0})
    {}
    """
    if variant == "scored":
        return {kind: float(w) for kind, w in weights.items() if w}
    return {"ifd_only": {"ifd": 1.0}, "quality_only": {"quality": 1.0}}.get(variant, {})


class Scorers:
    """The `kinds` of score of each candidate, from the cache or computed (in KINDS order).

    `model_dirs` maps the names params use ("base") to model folders; `seed` seeds a rater that samples."""

    def __init__(
        self,
        spec: Scores,
        kinds: Sequence[str],
        cache: KeyedCache,
        model_dirs: Mapping[str, Path],
        seed: int,
        *,
        progress: bool = True,
    ) -> None:
        unknown = sorted(set(kinds) - set(KINDS))
        if unknown:
            raise ValueError(f"unknown score kinds {unknown}; use {list(KINDS)}")
        self.spec, self.cache, self.model_dirs, self.seed = spec, cache, model_dirs, seed
        self.kinds = [k for k in KINDS if k in kinds]
        self.progress = progress
        self._ifd_model: tuple[Any, Any] | None = None
        self._rater: tuple[Any, Any] | None = None

    def __call__(self, examples: Sequence[Example]) -> Scored:
        out: Scored = {}
        for kind in self.kinds:
            with tqdm(total=len(examples), desc=f"score {kind}", unit="example", disable=not self.progress) as bar:
                out[kind] = self._ifd(examples, bar) if kind == "ifd" else self._rate(kind, examples, bar)
        return out

    # ------------------------------------------------------------------------------------------------------- ifd
    def _ifd(self, examples: Sequence[Example], bar: tqdm) -> list[float | None]:
        from lessismore.models import checkpoint_hash, pick_device
        from lessismore.scores.ifd import ifd_key, score_ifd
        from lessismore.train.distributed import use_bf16

        s = self.spec.ifd
        folder = self._folder(s.model, "curate.scores.ifd.model")
        device = pick_device("auto")
        dtype = "bf16" if use_bf16(s.precision, "cuda" if device.startswith("cuda") else "cpu") else "fp32"
        fingerprint = content_id(checkpoint_hash(folder), dtype)  # the weights, and the precision they ran in
        keys = [ifd_key(ex, fingerprint, s.max_tokens) for ex in examples]
        bar.update(sum(k in self.cache for k in keys))
        if all(k in self.cache for k in keys):
            model, tokenizer = None, None  # nothing to compute: nothing loaded
        else:
            model, tokenizer = self._load_ifd_model(folder, device, dtype)
        scores = score_ifd(
            examples,
            model,
            tokenizer,
            self.cache,
            fingerprint=fingerprint,
            max_tokens=s.max_tokens,
            batch_size=s.batch_size,
            progress=bar.update,
        )
        return [None if x is None else x.ifd for x in scores]

    def _load_ifd_model(self, folder: Path, device: str, dtype: str) -> tuple[Any, Any]:
        if self._ifd_model is None:
            import torch

            from lessismore.models import load_causal_lm

            weights = torch.bfloat16 if dtype == "bf16" else torch.float32
            self._ifd_model = load_causal_lm(folder, device=device, dtype=weights)
        return self._ifd_model

    def _folder(self, model: str, key: str) -> Path:
        folder = Path(self.model_dirs.get(model, model))
        if not folder.exists():
            raise NotFound(f"{key}: {folder} not found; use base (run the model stage first) or a model folder")
        return folder

    # ---------------------------------------------------------------------------------------------------- raters
    def _rate(self, kind: str, examples: Sequence[Example], bar: tqdm) -> list[float | None]:
        from lessismore.judge import load_template
        from lessismore.scores.rater import complexity_fields, quality_fields, rate, rating_keys

        backend, run = self._open_rater()
        name = f"{kind}_template"
        template = load_template(getattr(self.spec.rater, name), key=f"curate.scores.rater.{name}")
        fields = quality_fields(examples) if kind == "quality" else complexity_fields(examples)
        bar.update(sum(k in self.cache for k in rating_keys(kind, fields, template, run)))
        rated = rate(kind, fields, backend, template, run, self.cache, progress=bar.update)
        return [r.score for r in rated]

    def _open_rater(self) -> tuple[Any, Any]:
        if self._rater is None:  # the backend is lazy: a model loads, or a client opens, on the first question
            from lessismore.judge.factory import open_judge

            self._rater = open_judge(self.spec.rater, self.model_dirs, self.seed, section="curate.scores.rater")
        return self._rater
