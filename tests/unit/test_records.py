"""The data contract: content-hash ids, round trips through jsonl and parquet, crash-tolerant reads."""

from __future__ import annotations

import pytest

from lessismore.records import (
    Dropped,
    Example,
    Judgment,
    Message,
    Origin,
    Prompt,
    Response,
    append_jsonl,
    iter_jsonl,
    read_jsonl,
    read_parquet,
    write_jsonl,
    write_parquet,
)

ORIGIN = Origin(source="s", file="f.jsonl", row="3", license="CC BY 4.0")


def _example(answer: str = "Use a sharp knife.") -> Example:
    return Example(messages=(Message("user", "How do I dice an onion?"), Message("assistant", answer)), origin=ORIGIN)


def test_example_id_is_content_hash_ignoring_whitespace_and_origin():
    a = _example("Use a sharp knife.")
    b = Example(
        messages=(Message("user", "How do I  dice an onion?\n"), Message("assistant", "Use a sharp knife.")),
        origin=Origin("other", "g.csv", "9"),
    )
    assert a.id == b.id and len(a.id) == 16
    assert a.id != _example("Use a blunt knife.").id


def test_ids_depend_on_what_produced_them():
    r1 = Response(prompt_id="p", model="base", checkpoint="c1", text="x", decoding={"top_p": 0.9})
    r2 = Response(prompt_id="p", model="base", checkpoint="c2", text="x", decoding={"top_p": 0.9})
    assert r1.id != r2.id
    j = dict(prompt_id="p", judge="j", template="t", response_a="r1", response_b="r2", model_a="a", model_b="b")
    assert Judgment(order="ab", verdict="a", **j).id != Judgment(order="ba", verdict="a", **j).id
    assert Judgment(order="ab", verdict="a", **j).id == Judgment(order="ab", verdict="b", **j).id  # verdict is output


def test_prompt_and_example_properties():
    ex = _example()
    assert ex.prompt == "How do I dice an onion?" and ex.response == "Use a sharp knife."
    assert Prompt(text=" Hi  there", split="test", origin=ORIGIN).id == Prompt("Hi there", "dev", ORIGIN).id


def test_jsonl_round_trip(tmp_path):
    path = tmp_path / "x" / "ex.jsonl"
    rows = [_example(), _example("Another way.")]
    assert write_jsonl(path, rows) == 2
    assert read_jsonl(path, Example) == rows


def test_parquet_round_trip_keeps_meta(tmp_path):
    ex = Example(messages=_example().messages, origin=ORIGIN, meta={"score": 12, "tags": ["a", "b"]})
    write_parquet(tmp_path / "ex.parquet", [ex])
    (back,) = read_parquet(tmp_path / "ex.parquet", Example)
    assert back == ex and back.meta["tags"] == ["a", "b"]


def test_torn_last_line_is_skipped_but_a_bad_middle_line_raises(tmp_path):
    path = tmp_path / "j.jsonl"
    append_jsonl(path, [_example()])
    with path.open("a") as fh:
        fh.write('{"messages": [')  # a crash mid-append
    assert len(list(iter_jsonl(path))) == 1
    append_jsonl(path, [_example("later")])  # the next append cuts the torn tail instead of gluing onto it
    assert [r["messages"][1]["content"] for r in iter_jsonl(path)] == ["Use a sharp knife.", "later"]
    with path.open("a") as fh:
        fh.write("not json\n")
    append_jsonl(path, [_example("after")])  # a bad line in the middle is corruption, not a crash: it raises
    with pytest.raises(ValueError, match=r"j.jsonl:3: not valid JSON"):
        list(iter_jsonl(path))


def test_dropped_keeps_origin_and_reason(tmp_path):
    d = Dropped(stage="ingest", reason="malformed_json", origin=ORIGIN, detail="line 3", record={"raw": "{"})
    write_jsonl(tmp_path / "q.jsonl", [d])
    (back,) = read_jsonl(tmp_path / "q.jsonl", Dropped)
    assert back == d and back.origin.row == "3"
