"""generate/store.py: resumable generation keyed by content id; a crash loses nothing, a rerun fills only the gaps.

The backend here is a small deterministic one written for the test (it upper-cases the prompt), so these tests run
in milliseconds; the crash is injected at the backend seam. The stage-level kill -9 test with a real model is in
tests/integration/test_generate_resume.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from lessismore import records
from lessismore.generate import Batch, GenResult, collect
from lessismore.generate.store import load_store, response_id, run_resumable

ORIGIN = records.Origin(source="test", file="test.jsonl", row="0")
PROMPTS = [records.Prompt(text=f"prompt number {i}", split="test", origin=ORIGIN) for i in range(5)]
DECODING = {"top_p": 0.9, "temperature": 0.7, "repetition_penalty": 1.2, "max_new_tokens": 8, "seed": 1}


class Crash(RuntimeError):
    pass


class UpperBackend:
    """Answers each prompt with its upper-case text, two prompts a batch; optionally dies before batch `crash_at`."""

    def __init__(self, calls: list[str], crash_at: int | None = None):
        self.calls, self.crash_at = calls, crash_at

    def generate_batches(self, prompts: list[str]) -> Iterator[Batch]:
        for n, start in enumerate(range(0, len(prompts), 2)):
            if n == self.crash_at:
                raise Crash("killed mid-run")
            idx = list(range(start, min(start + 2, len(prompts))))
            self.calls += [prompts[i] for i in idx]
            yield idx, [GenResult(prompts[i].upper(), 3, "eot", {"seed": 5}) for i in idx]

    def generate(self, prompts: list[str]) -> list[GenResult]:
        return collect(self.generate_batches(prompts), len(prompts))


def _run(path, calls, crash_at=None, checkpoint="ck1", decoding=DECODING, prompts=PROMPTS, log=None):
    messages = log if log is not None else []
    return run_resumable(
        lambda: UpperBackend(calls, crash_at),
        prompts,
        path,
        model="base",
        checkpoint=checkpoint,
        decoding=decoding,
        log=messages.append,
    )


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_fresh_run_answers_every_prompt_in_prompt_order(tmp_path):
    calls: list[str] = []
    run = _run(tmp_path / "base.jsonl", calls)
    assert (run.resumed, run.generated, run.stale, run.new_tokens) == (0, 5, 0, 15)
    assert [r.prompt_id for r in run.responses] == [p.id for p in PROMPTS]
    assert [r["text"] for r in _lines(tmp_path / "base.jsonl")] == [p.text.upper() for p in PROMPTS]
    first = run.responses[0]
    assert first.id == response_id("base", "ck1", PROMPTS[0].id, DECODING)
    assert first.meta == {"seed": 5, "new_tokens": 3, "finish_reason": "eot"}


def test_a_crash_keeps_finished_batches_and_the_rerun_generates_only_the_rest(tmp_path):
    path, calls = tmp_path / "base.jsonl", []
    with pytest.raises(Crash):
        _run(path, calls, crash_at=1)
    assert [r["prompt_id"] for r in _lines(path)] == [p.id for p in PROMPTS[:2]]  # batch 1 was on disk already

    run = _run(path, calls)
    assert (run.resumed, run.generated, run.stale) == (2, 3, 0)
    assert sorted(calls) == sorted(p.text for p in PROMPTS)  # no prompt was generated twice
    assert [r["prompt_id"] for r in _lines(path)] == [p.id for p in PROMPTS]  # every prompt once, in order


def test_a_finished_run_is_not_redone_and_never_builds_a_backend(tmp_path):
    path = tmp_path / "base.jsonl"
    _run(path, [])
    before = path.read_bytes()

    def must_not_build():
        raise AssertionError("a complete store must not load a model")

    run = run_resumable(must_not_build, PROMPTS, path, model="base", checkpoint="ck1", decoding=DECODING)
    assert (run.resumed, run.generated) == (5, 0) and path.read_bytes() == before


def test_a_torn_last_line_is_regenerated_not_trusted(tmp_path):
    path, calls = tmp_path / "base.jsonl", []
    _run(path, calls)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])  # the kill came in the middle of the last record
    calls.clear()
    run = _run(path, calls)
    assert (run.resumed, run.generated, run.stale) == (4, 1, 1) and calls == [PROMPTS[-1].text]
    assert len(_lines(path)) == 5


@pytest.mark.parametrize("change", ["checkpoint", "decoding"])
def test_answers_from_another_checkpoint_or_decoding_are_dropped_as_stale(tmp_path, change):
    path = tmp_path / "base.jsonl"
    _run(path, [])
    calls: list[str] = []
    log: list[str] = []
    kw = {"checkpoint": "ck2"} if change == "checkpoint" else {"decoding": {**DECODING, "temperature": 0.1}}
    run = _run(path, calls, log=log, **kw)
    assert (run.resumed, run.generated, run.stale) == (0, 5, 5) and len(calls) == 5
    assert any("dropped 5 stale" in m for m in log)
    kept, stale = load_store(path, {p.id: r.id for p, r in zip(PROMPTS, run.responses, strict=True)})
    assert len(kept) == 5 and stale == 0  # the file now holds only the new answers


def test_a_smaller_prompt_set_drops_the_extra_answers_and_duplicates_are_answered_once(tmp_path):
    path, calls = tmp_path / "base.jsonl", []
    _run(path, calls)
    twice = [PROMPTS[0], PROMPTS[1], PROMPTS[0]]
    run = _run(path, calls, prompts=twice)
    assert (run.resumed, run.generated, run.stale) == (2, 0, 3)
    assert [r.prompt_id for r in run.responses] == [PROMPTS[0].id, PROMPTS[1].id]


def test_a_hand_edited_line_whose_id_no_longer_matches_is_not_reused(tmp_path):
    path, calls = tmp_path / "base.jsonl", []
    _run(path, calls)
    rows = _lines(path)
    rows[0]["checkpoint"] = "edited"  # the id on the line now lies about what produced the text
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "not json at all\n" + json.dumps(rows[-1]) + "\n")
    calls.clear()
    run = _run(path, calls)
    assert calls == [PROMPTS[0].text] and run.stale == 3  # the edited line, the garbage, the duplicate
