"""Shared fixtures. Offline and telemetry-free for every test, as in the Makefile."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

OFFLINE_ENV = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DVC_NO_ANALYTICS": "1",
    "GX_ANALYTICS_ENABLED": "false",
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}
os.environ.update(OFFLINE_ENV)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random Llama (ChatML template, <|im_end|> as end of turn) saved once per test session."""
    from lessismore.train.base_model import build_tiny_random

    return build_tiny_random(tmp_path_factory.mktemp("tiny_model"), seed=0)
