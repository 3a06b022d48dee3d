"""Kill -9 mid-judging: what was judged survives in the verdict cache, and the re-run judges only the rest.

A child process judges 30 pairs (60 single verdicts, one per forward pass) with the local backend on the tiny random
model, writing to a cache file; the test kills it with SIGKILL once some verdicts are on disk, then re-runs the same
judging here with a backend that counts what it is asked, and compares with an uninterrupted run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lessismore.judge import load_template
from lessismore.judge.cache import KeyedCache
from lessismore.judge.local import LocalBackend
from lessismore.judge.protocol import judge_pairs
from tests.conftest import run_env

N_PAIRS = 30
SETUP = """
from lessismore.records import Origin, Prompt, Response
from lessismore.judge.protocol import JudgeRun, build_pairs

def make_pairs(n):
    origin = Origin("t", "t.jsonl", "1")
    prompts = [Prompt(text=f"Question {i}: how do I sort a list of {i} items?", split="test", origin=origin)
               for i in range(n)]
    answers = [Response(prompt_id=p.id, model=m, checkpoint="c", text=f"{m} answer {i} " * (1 + i % 5), decoding={})
               for i, p in enumerate(prompts) for m in ("finetuned", "base")]
    return build_pairs(prompts, answers, "finetuned", ["base"])[0]

RUN = JudgeRun("tiny-judge", fingerprint="tiny-f0")
"""
CHILD = """
import sys, time
from transformers import AutoModelForCausalLM, AutoTokenizer
from lessismore.judge import load_template
from lessismore.judge.cache import KeyedCache
from lessismore.judge.local import LocalBackend
from lessismore.judge.protocol import judge_pairs

model_dir, cache_file, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
model, tok = AutoModelForCausalLM.from_pretrained(model_dir), AutoTokenizer.from_pretrained(model_dir)

class Slow(LocalBackend):  # a slow judge, so the kill lands mid-run
    def ask_batches(self, messages, options, seeds=()):
        for batch in super().ask_batches(messages, options, seeds):
            time.sleep(0.2)
            yield batch

with KeyedCache(cache_file) as cache:
    judge_pairs(make_pairs(n), Slow(model, tok, batch_size=1), load_template("pairwise"), RUN, cache)
"""


def _make_pairs(n: int):
    scope: dict = {}
    exec(SETUP, scope)  # the same pairs as the child's, from the same source text
    return scope["make_pairs"](n), scope["RUN"]


class Counting(LocalBackend):
    asked = 0

    def ask_batches(self, messages, options, seeds=()):
        self.asked += len(messages)
        yield from super().ask_batches(messages, options, seeds)


@pytest.mark.slow
def test_kill_9_mid_run_keeps_the_verdicts_and_the_rerun_judges_only_the_rest(tiny_model_dir: Path, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cache_file, script = tmp_path / "judge_cache.jsonl", tmp_path / "child.py"
    script.write_text(SETUP + textwrap.dedent(CHILD))
    proc = subprocess.Popen(
        [sys.executable, str(script), str(tiny_model_dir), str(cache_file), str(N_PAIRS)], env=run_env()
    )
    deadline = time.monotonic() + 120
    while not cache_file.exists() or len(cache_file.read_text().splitlines()) < 6:
        assert proc.poll() is None, "the child finished or failed before it could be killed"
        assert time.monotonic() < deadline, "the child wrote no verdicts in 120 s"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    survived = len(KeyedCache(cache_file))
    assert 6 <= survived < 2 * N_PAIRS

    model, tok = AutoModelForCausalLM.from_pretrained(tiny_model_dir), AutoTokenizer.from_pretrained(tiny_model_dir)
    pairs, run = _make_pairs(N_PAIRS)
    template = load_template("pairwise")
    rest = Counting(model, tok, batch_size=4)
    with KeyedCache(cache_file) as cache:
        resumed, stats = judge_pairs(pairs, rest, template, run, cache)
    assert rest.asked == stats.calls == 2 * N_PAIRS - survived and stats.cached == survived

    fresh, _ = judge_pairs(pairs, LocalBackend(model, tok, batch_size=4), template, run)
    assert [(j.id, j.verdict) for j in resumed] == [(j.id, j.verdict) for j in fresh]
    for x, y in zip(resumed, fresh, strict=True):  # batches of 1 (the child) and 4 (here): equal to float tolerance
        assert _scores(x.raw) == pytest.approx(_scores(y.raw), abs=1e-3)


def _scores(raw: str) -> dict[str, float]:
    return {k: float(v) for k, v in (kv.split("=") for kv in raw.split())}
