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
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "RAY_USAGE_STATS_ENABLED": "0",
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
    from tests.specs import tiny_shape

    return build_tiny_random(tmp_path_factory.mktemp("tiny_model"), tiny_shape(), seed=0)


# ---------------------------------------------------------------------------------------------------------------
# a real DVC + git repository in a temp dir, holding this project's pipeline on the tiny profile

GIT_ENV = {
    "GIT_AUTHOR_NAME": "lessismore-tests",
    "GIT_AUTHOR_EMAIL": "tests@lessismore.invalid",
    "GIT_COMMITTER_NAME": "lessismore-tests",
    "GIT_COMMITTER_EMAIL": "tests@lessismore.invalid",
}
PIPELINE_FILES = [
    "dvc.yaml",
    "stages",
    "flows",
    "src/lessismore",
    "data/sources",
    "data/baselines",
    "profiles",
    "prefect.yaml",
    "infra",
    "outputs/human_judgments.jsonl",
    "metrics/ablation.json",
]


def run_env() -> dict[str, str]:
    """The environment for subprocesses: offline, git identity, and this venv's python first on PATH."""
    import sys

    env = {**os.environ, **OFFLINE_ENV, **GIT_ENV}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def make_pipeline_repo(dest: Path, profile: str = "tiny", *more: str) -> Path:
    """Copy the pipeline into `dest`, merge profiles/<profile>.yaml (then each of `more`, in order) into params.yaml,
    git init + dvc init + commit."""
    import shutil
    import subprocess

    import yaml

    from lessismore.config import merge, read_yaml

    dest.mkdir(parents=True, exist_ok=True)
    for rel in PIPELINE_FILES:
        src = REPO / rel
        if src.is_dir():
            shutil.copytree(src, dest / rel, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    params = read_yaml(REPO / "params.yaml")
    for name in (profile, *more):
        params = merge(params, read_yaml(REPO / "profiles" / f"{name}.yaml"))
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    shutil.copy2(REPO / ".gitignore", dest / ".gitignore")
    env = run_env()
    for cmd in (
        ["git", "init", "-q", "-b", "main"],
        ["dvc", "init", "-q"],
        ["dvc", "config", "core.analytics", "false"],
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "pipeline under test"],
    ):
        subprocess.run(cmd, cwd=dest, env=env, check=True)
    return dest


@pytest.fixture
def pipeline_repo(tmp_path) -> Path:
    return make_pipeline_repo(tmp_path / "repo")


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect API (SQLite) for the whole session: it takes ~11 s to start."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def toy_examples(n: int, source: str = "handwritten") -> list:
    """`n` short, distinct training conversations for the stage tests (train, resume, generate)."""
    from lessismore import records

    origin = records.Origin(source=source, file=f"data/sources/{source}/train.jsonl", row="0")
    return [
        records.Example(
            messages=(
                records.Message("user", f"Question {i}: how do I fix this, step by step?"),
                records.Message("assistant", f"Here is the answer {i}. First, the quick brown fox. Then the dog."),
            ),
            origin=origin,
        )
        for i in range(n)
    ]


@pytest.fixture(scope="session")
def transformers_serve(tiny_model_dir: Path, tmp_path_factory):
    """A real `transformers serve` of the tiny model on 127.0.0.1 for the generate and judge tests: (url, model)."""
    from tests.servers import serve_transformers

    with serve_transformers(tiny_model_dir, tmp_path_factory.mktemp("serve") / "serve.log") as url:
        yield url, str(tiny_model_dir)
