"""Typed specs for tests: the params sections the cores take, built from the repository's own params.yaml.

A test that needs a core's spec starts from the values the demo runs with and overrides only what it tests, so no
test carries a second set of defaults that could drift from params.yaml.
"""

from __future__ import annotations

import dataclasses
from functools import cache
from pathlib import Path
from typing import Any

from lessismore.config import Curate, Params, Source, Tiny, Train, load_params

REPO = Path(__file__).resolve().parents[1]


@cache
def repo_params() -> Params:
    return load_params(REPO / "params.yaml")


def tiny_shape() -> Tiny:
    """The tiny random Llama of profiles/tiny.yaml (what the smoke runs and the e2e test train)."""
    return load_params(REPO / "params.yaml", REPO / "profiles" / "tiny.yaml").model.tiny


def train_spec(**overrides: Any) -> Train:
    """params.yaml's train section with `overrides` (e.g. train_spec(max_tokens=128, method="full"))."""
    return dataclasses.replace(repo_params().train, **overrides)


def curate_spec(**overrides: Any) -> Curate:
    """params.yaml's curate section with `overrides`; near_dup / decontam / scores take dicts of their own."""
    c = repo_params().curate
    for nested in ("near_dup", "decontam", "scores"):
        if isinstance(overrides.get(nested), dict):
            overrides[nested] = dataclasses.replace(getattr(c, nested), **overrides[nested])
    return dataclasses.replace(c, **overrides)


def source(name: str, format: str, path: str, split: str, license: str = "", **kw: Any) -> Source:
    """An ingest.sources entry; hf:// paths get hf_split "train" and hf_config "" unless given."""
    if path.startswith("hf://"):
        kw = {"hf_split": "train", "hf_config": "", **kw}
    return Source(name=name, format=format, path=path, split=split, license=license, **kw)


def read_source(name: str, format: str, path: str, split: str, license: str = "", index: int | None = None, **kw):
    """sources.ingest_source on the entry `source(...)` builds."""
    from lessismore.sources import ingest_source

    return ingest_source(source(name, format, path, split, license, **kw), index)


WIRING = ("checkpoint_dir", "log_dir", "perf_dir", "identity", "meta", "progress", "on_checkpoint")


def run_train(model: Any, tokenizer: Any, examples: Any, *, seed: int = 0, new_tokens: Any = (), **kw: Any):
    """train.loop.train on train_spec(**overrides); the run's wiring keys (checkpoint_dir, log_dir, ...) go to its
    TrainRun, with progress bars off unless asked for."""
    from lessismore.train.loop import TrainRun, train

    wiring = {"progress": False} | {k: kw.pop(k) for k in WIRING if k in kw}
    return train(
        model, tokenizer, examples, train_spec(**kw), seed=seed, run=TrainRun(**wiring), new_tokens=new_tokens
    )


def judge_entry(**overrides: Any) -> dict[str, Any]:
    """params.yaml's first judge entry as YAML data (every key spelled out), with `overrides`."""
    from lessismore.config import read_yaml

    return {**read_yaml(REPO / "params.yaml")["judge"]["judges"][0], **overrides}


def dev_decoding(**overrides: Any) -> dict[str, Any]:
    """A train.select_decoding block (LIMA's sampling, short answers), with `overrides`."""
    lima = {"max_new_tokens": 16, "top_p": 0.9, "temperature": 0.7, "repetition_penalty": 1.2, "batch_size": 4}
    return lima | overrides
