"""Resumable data stages (resume.py): fingerprints, the work folder and its checkpoints, restartable writers, and
ingest_all resumed from each of its checkpoints giving the bytes of an uninterrupted run."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest

from lessismore.config import Source
from lessismore.contract import PARTIAL
from lessismore.records import Example, JsonlSink, Message, Origin, ShardWriter, iter_batches
from lessismore.resume import Work, fingerprint, identity
from lessismore.sources import ingest_all


def _examples(n: int) -> list[Example]:
    origin = Origin("s", "f.jsonl", "0")
    return [Example((Message("user", f"Q{i}?"), Message("assistant", f"A{i}.")), origin) for i in range(n)]


def _bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)  # contract paths are relative to the project root
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_text("one\n")
    (tmp_path / "stage.py").write_text("print('stage')\n")
    return tmp_path


def test_fingerprint_changes_with_params_inputs_and_code(project):
    same = fingerprint({"k": 1}, ["in"], ["stage.py"])
    assert same == fingerprint({"k": 1}, ["in"], ["stage.py"]) and len(same) == 16
    assert fingerprint({"k": 2}, ["in"], ["stage.py"]) != same
    (project / "stage.py").write_text("print('other')\n")
    assert fingerprint({"k": 1}, ["in"], ["stage.py"]) != same
    (project / "stage.py").write_text("print('stage')\n")
    assert fingerprint({"k": 1}, ["in"], ["stage.py"]) == same
    (project / "in" / "a.jsonl").write_text("two\n")  # same size, new mtime
    os.utime(project / "in" / "a.jsonl", ns=(1, 1))
    assert fingerprint({"k": 1}, ["in"], ["stage.py"]) != same


def test_identity_stats_files_of_a_folder_a_glob_and_a_file(project):
    (project / "in" / "b.jsonl").write_text("three\n")
    assert [f for f, *_ in identity("in")] == ["in/a.jsonl", "in/b.jsonl"]
    assert [f for f, *_ in identity("in/*.jsonl")] == ["in/a.jsonl", "in/b.jsonl"]
    assert identity("in/b.jsonl")[0][1] == 6  # bytes


def test_work_resumes_only_its_own_intact_checkpoint(project):
    work = Work.open("ingest", "f1")
    assert work.state is None and not work.discarded and work.shards == 0 and work.folder == PARTIAL / "ingest"
    work.path("q.jsonl").write_text("x\n")
    (work.path("examples")).mkdir()
    (work.path("examples") / "part-00000.parquet").write_text("finished")
    work.save({"shards": 3, "n": [1]}, ["q.jsonl"], {"examples": 1})
    assert not work.path("state.json.tmp").exists()

    again = Work.open("ingest", "f1")
    assert again.shards == 3 and again.state["n"] == [1] and again.state["files"] == {"q.jsonl": 2}
    (again.path("examples") / "part-00000.parquet").unlink()  # a finished shard gone: nothing to resume from
    assert Work.open("ingest", "f1").state is None
    work.path("q.jsonl").write_text("x\n")
    work.save({"shards": 3}, ["q.jsonl"], {})
    work.path("q.jsonl").write_text("")  # shorter than at the checkpoint: not this checkpoint's file any more
    assert Work.open("ingest", "f1").state is None and not (PARTIAL / "ingest" / "q.jsonl").exists()

    Work.open("ingest", "f1").save({"shards": 1}, [], {})
    other = Work.open("ingest", "f2")  # other params, inputs or code: the stale work is removed
    assert other.state is None and other.discarded and list(other.folder.iterdir()) == []
    assert not Work.open("ingest", "f2").discarded  # killed before its first checkpoint: nothing to say


def test_work_finish_moves_outputs_into_place_and_removes_itself(project):
    work = Work.open("ingest", "f")
    (work.path("examples")).mkdir()
    (work.path("examples") / "part-00000.parquet").write_text("new")
    work.path("q.jsonl").write_text("q")
    (project / "out" / "examples").mkdir(parents=True)
    (project / "out" / "examples" / "part-00009.parquet").write_text("stale")
    work.finish({"examples": project / "out" / "examples", "q.jsonl": project / "quarantine" / "q.jsonl"})
    assert [p.name for p in (project / "out" / "examples").iterdir()] == ["part-00000.parquet"]
    assert (project / "quarantine" / "q.jsonl").read_text() == "q"
    assert not PARTIAL.parent.exists()


def test_shard_writer_keeps_finished_shards_and_rewrites_the_rest(tmp_path):
    rows = _examples(5)
    with ShardWriter(tmp_path / "whole", Example, 2) as whole:
        for i, rec in enumerate(rows):
            whole.write(rec)
            assert whole.finished == (i + 1) // 2  # a full shard is closed at once
    with ShardWriter(tmp_path / "cut", Example, 2) as cut:
        for rec in rows[:3]:
            cut.write(rec)
    (tmp_path / "cut" / "part-00007.parquet").write_text("left by a longer run")
    with ShardWriter(tmp_path / "cut", Example, 2, keep=1) as resumed:  # killed with shard 1 open
        assert resumed.count == 2 and not (tmp_path / "cut" / "part-00001.parquet").exists()
        for rec in rows[2:]:
            resumed.write(rec)
    assert _bytes(tmp_path / "cut") == _bytes(tmp_path / "whole") and len(resumed.shards) == 3


def test_jsonl_sink_reopened_is_cut_back_to_the_checkpoint(tmp_path):
    with JsonlSink(tmp_path / "q.jsonl") as sink:
        sink.write({"a": 1})
        size = sink.size()
        sink.write({"a": 2})
    with JsonlSink(tmp_path / "q.jsonl", keep_bytes=size) as sink:
        sink.write({"a": 3})
    assert (tmp_path / "q.jsonl").read_text() == '{"a":1}\n{"a":3}\n'


def test_iter_batches_skips_whole_shards(tmp_path):
    with ShardWriter(tmp_path, Example, 3) as shards:
        for rec in _examples(7):
            shards.write(rec)
    batches = list(iter_batches(tmp_path, Example, 3, skip=1))
    assert [[e.prompt for e in b] for b in batches] == [["Q3?", "Q4?", "Q5?"], ["Q6?"]]


def test_iter_batches_skip_counts_batches_inside_a_file(tmp_path):
    with ShardWriter(tmp_path, Example, 10) as shards:
        for rec in _examples(7):
            shards.write(rec)
    assert [len(b) for b in iter_batches(tmp_path, Example, 3, skip=1)] == [3, 1]


# ----------------------------------------------------------------------------------------------------------------
# ingest_all from each of its checkpoints


def _sources(root: Path) -> tuple[Source, ...]:
    def lima(n: int, bad_every: int) -> str:
        rows = [json.dumps({"conversations": [f"Question {i}?", f"Answer {i}."]}) for i in range(n)]
        return "\n".join('{"broken' if i % bad_every == 3 else r for i, r in enumerate(rows)) + "\n"

    (root / "a.jsonl").write_text(lima(7, 5))
    (root / "p.jsonl").write_text('{"prompt": "Why?"}\n{"prompt": "How?"}\n')
    (root / "b.jsonl").write_text(lima(23, 6))
    spec = [("a", "lima_jsonl", "train"), ("p", "prompts_jsonl", "test"), ("b", "lima_jsonl", "train")]
    return tuple(Source(name, format, str(root / f"{name}.jsonl"), split, "x") for name, format, split in spec)


def _ingest(root: Path, sources, start=None, keep=(0, None, None)) -> tuple[list[dict], dict]:
    """ingest_all into root/out as the stage does; returns the checkpoints it made and the metrics."""
    saved = []
    out = root / "out"
    with (
        ShardWriter(out / "examples", Example, 4, keep=keep[0]) as examples,
        JsonlSink(out / "prompts.jsonl", keep_bytes=keep[1]) as prompts,
        JsonlSink(out / "quarantine.jsonl", keep_bytes=keep[2]) as dropped,
    ):

        def checkpoint(position: dict) -> None:
            sizes = {"shards": examples.finished, "prompts": prompts.size(), "quarantine": dropped.size()}
            saved.append(json.loads(json.dumps(position | sizes)) | {"bytes": _all_bytes(out)})

        counts = ingest_all(sources, examples, prompts, dropped, lambda *a: None, checkpoint, start)
    return saved, counts


def _all_bytes(out: Path) -> dict[str, bytes]:
    files = sorted(p for p in out.rglob("*") if p.is_file())
    return {str(p.relative_to(out)): p.read_bytes() for p in files}


def test_ingest_all_resumed_from_any_checkpoint_gives_the_same_bytes_and_counts(tmp_path):
    sources = _sources(tmp_path)
    checkpoints, counts = _ingest(tmp_path, sources)
    whole, metrics = _all_bytes(tmp_path / "out"), counts.metrics()
    assert len(checkpoints) == 6 and {c["source"] for c in checkpoints} == {0, 2}  # 24 examples, 4 a shard
    for state in checkpoints:
        out = tmp_path / "out"
        for name, data in state["bytes"].items():  # the files as the killed run left them at this checkpoint...
            (out / name).write_bytes(data)
        (out / "quarantine.jsonl").write_text((out / "quarantine.jsonl").read_text() + '{"torn": ')  # ...and after
        _, resumed = _ingest(tmp_path, sources, state, (state["shards"], state["prompts"], state["quarantine"]))
        assert _all_bytes(out) == whole, state["seen"]
        assert resumed.metrics() == metrics
        assert resumed.reparsed["records"] == Counter(state["seen"]).total()  # the source's records read again
