"""The shared content-keyed cache (round trip, torn tail, later row wins) and IFD scoring through it: a warm re-run
makes zero forward passes, and a kill -9 after the first flushed bucket loses nothing already scored."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from lessismore.judge.cache import KeyedCache
from lessismore.records import Example, Message, Origin
from lessismore.scores.ifd import ifd_key, ifd_scores, score_ifd
from tests.conftest import REPO, run_env

# ---------------------------------------------------------------------------------------------------------------
# the cache itself


def test_rows_round_trip_through_the_file_and_a_later_row_wins(tmp_path):
    path = tmp_path / "sub" / "cache.jsonl"
    with KeyedCache(path) as cache:
        cache.put([{"key": "k1", "score": 1.5, "meta": {"x": "é"}}, {"key": "k2", "score": None}])
        cache.put([{"key": "k1", "score": 2.5}])  # re-scored after a hand edit: appended, not rewritten
    assert len(path.read_text(encoding="utf-8").splitlines()) == 3
    again = KeyedCache(path)
    assert len(again) == 2 and "k2" in again and again.unreadable == 0
    assert again.get("k1") == {"key": "k1", "score": 2.5} and again.get("k2")["score"] is None
    assert again.fingerprint() == KeyedCache(path).fingerprint() != KeyedCache(None).fingerprint()


def test_a_torn_tail_is_cut_and_a_garbage_line_skipped(tmp_path):
    path = tmp_path / "cache.jsonl"
    with KeyedCache(path) as cache:
        cache.put([{"key": f"k{i}", "score": float(i)} for i in range(3)])
    path.write_bytes(path.read_bytes() + b'not json\n{"key": "k9", "sco')  # a hand edit, then a kill mid-line
    cache = KeyedCache(path)
    assert (len(cache), cache.unreadable) == (3, 2) and path.read_bytes().endswith(b"not json\n")
    cache.put([{"key": "k9", "score": 9.0}])
    cache.close()
    assert KeyedCache(path).get("k9") == {"key": "k9", "score": 9.0}


def test_a_hardlinked_file_is_copied_before_appending(tmp_path):
    path, dvc_copy = tmp_path / "cache.jsonl", tmp_path / "dvc_cache_object"
    with KeyedCache(path) as cache:
        cache.put([{"key": "a"}])
    os.link(path, dvc_copy)  # DVC checks outputs out as links into its cache
    with KeyedCache(path) as cache:
        cache.put([{"key": "b"}])
    assert len(dvc_copy.read_text().splitlines()) == 1 and len(path.read_text().splitlines()) == 2


# ---------------------------------------------------------------------------------------------------------------
# IFD through the cache


def _examples(n: int) -> list[Example]:
    return [
        Example(
            (Message("user", f"Question {i}: how do I sort {i} items? " * (1 + i % 3)), Message("assistant", a)),
            Origin("s", "s.jsonl", str(i)),
        )
        for i, a in enumerate(f"Answer {i}: use sorted() on the list. " * (1 + i % 4) for i in range(n))
    ]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_model_dir), AutoTokenizer.from_pretrained(tiny_model_dir)


def _counting(model):
    calls = []
    handle = model.register_forward_hook(lambda module, args, out: calls.append(1))
    return calls, handle


def test_a_warm_cache_makes_zero_forward_passes_and_gives_the_same_scores(tiny, tmp_path):
    model, tok = tiny
    examples, path = _examples(6), tmp_path / "scores.jsonl"
    kw = {"fingerprint": "tiny", "max_tokens": 256, "batch_size": 4}
    calls, handle = _counting(model)
    try:
        seen = []
        with KeyedCache(path) as cache:
            cold = score_ifd(examples, model, tok, cache, progress=seen.append, **kw)
        assert seen == [4, 2] and len(calls) == 4  # two buckets, with and without the prompt each
        calls.clear()
        with KeyedCache(path) as cache:
            warm = score_ifd([*examples, examples[0]], model, tok, cache, progress=seen.append, **kw)
        assert calls == [] and seen == [4, 2] and warm == [*cold, cold[0]]
        with KeyedCache(path) as cache:  # another scorer or another cut is another question
            score_ifd(examples[:1], model, tok, cache, **(kw | {"max_tokens": 128}))
        assert len(calls) == 2
    finally:
        handle.remove()
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["kind"] for r in rows] == ["ifd"] * 7 and rows[0]["score"] == pytest.approx(
        rows[0]["meta"]["with_prompt"] / rows[0]["meta"]["without_prompt"]
    )
    fresh = ifd_scores(examples, model, tok, max_tokens=256, batch_size=3)  # uncached, other buckets: same numbers
    assert [s.ifd for s in fresh] == pytest.approx([s.ifd for s in cold], rel=1e-5)


CHILD = """
import sys, time
from transformers import AutoModelForCausalLM, AutoTokenizer
from lessismore.judge.cache import KeyedCache
from lessismore.scores.ifd import score_ifd
from tests.unit.test_scores_cache import _examples

model_dir, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
model, tok = AutoModelForCausalLM.from_pretrained(model_dir), AutoTokenizer.from_pretrained(model_dir)
with KeyedCache(path) as cache:  # after the first bucket is flushed, wait to be killed
    score_ifd(_examples(n), model, tok, cache, fingerprint="tiny", max_tokens=256, batch_size=3,
              progress=lambda k: time.sleep(120))
"""


def test_kill_9_after_the_first_bucket_keeps_it_and_the_rerun_scores_only_the_rest(tiny, tiny_model_dir, tmp_path):
    model, tok = tiny
    path, script, n = tmp_path / "scores.jsonl", tmp_path / "child.py", 8
    script.write_text(textwrap.dedent(CHILD))
    env = run_env() | {"PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}  # this checkout's code
    proc = subprocess.Popen([sys.executable, str(script), str(tiny_model_dir), str(path), str(n)], env=env)
    deadline = time.monotonic() + 120
    while not path.exists() or len(path.read_text().splitlines()) < 3:
        assert proc.poll() is None, "the child finished or failed before it could be killed"
        assert time.monotonic() < deadline, "the child scored nothing in 120 s"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert len(KeyedCache(path)) == 3

    examples, calls, handle = _examples(n), *_counting(model)
    try:
        seen = []
        with KeyedCache(path) as cache:
            resumed = score_ifd(
                examples, model, tok, cache, fingerprint="tiny", max_tokens=256, batch_size=3, progress=seen.append
            )
    finally:
        handle.remove()
    assert seen == [3, 2] and len(calls) == 4 and len(KeyedCache(path)) == n  # only the 5 not yet scored
    fresh = score_ifd(examples, model, tok, KeyedCache(None), fingerprint="tiny", max_tokens=256, batch_size=3)
    for a, b in zip(resumed, fresh, strict=True):
        assert (a.tokens, a.tokens_alone) == (b.tokens, b.tokens_alone)
        assert (a.with_prompt, a.without_prompt) == pytest.approx((b.with_prompt, b.without_prompt), rel=1e-5)
    assert {ifd_key(ex, "tiny", 256) for ex in examples} == set(KeyedCache(path).rows)
