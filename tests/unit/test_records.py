"""The data contract: content-hash ids, round trips through jsonl and parquet, shards, crash-tolerant reads."""

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
    ShardWriter,
    TableShards,
    append_jsonl,
    iter_batches,
    iter_jsonl,
    iter_tables,
    parquet_files,
    read_jsonl,
    read_parquet,
    to_table,
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


def _many(n: int) -> list[Example]:
    return [
        Example((Message("user", f"Question {i}?"), Message("assistant", f"Answer {i}.")), ORIGIN, {"i": i})
        for i in range(n)
    ]


def test_shard_writer_keeps_the_row_budget_and_the_order(tmp_path):
    import pyarrow.parquet as pq

    examples = _many(2500)
    with ShardWriter(tmp_path / "examples", Example, shard_rows=1100) as shards:
        for e in examples:
            shards.write(e)
    names = [p.name for p in parquet_files(tmp_path / "examples")]
    assert names == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"] and shards.count == 2500
    files = [pq.ParquetFile(p).metadata for p in parquet_files(tmp_path / "examples")]
    assert [m.num_rows for m in files] == [1100, 1100, 300]
    assert [[m.row_group(i).num_rows for i in range(m.num_row_groups)] for m in files] == [
        [1024, 76],
        [1024, 76],
        [300],
    ]  # fixed row groups (records.ROW_GROUP_ROWS): the writer never holds a whole shard
    assert read_parquet(tmp_path / "examples", Example) == examples  # order, meta and ids kept
    batches = list(iter_batches(tmp_path / "examples", Example, batch_rows=1000))
    assert [len(b) for b in batches] == [1000, 100, 1000, 100, 300]  # a batch never spans two shards
    assert [e for b in batches for e in b] == examples


def test_records_and_their_arrow_tables_give_the_same_shards(tmp_path):
    """ShardWriter.write_table cuts tables at the shard boundaries; TableShards writes a table a shard; both read
    back as the records written, and iter_tables gives the tables iter_batches makes records of."""
    examples = _many(25)
    with ShardWriter(tmp_path / "rows", Example, shard_rows=10) as rows:
        for e in examples:
            rows.write(e)
    with ShardWriter(tmp_path / "tables", Example, shard_rows=10) as tables:
        for start in (0, 7, 19):  # pieces that straddle the boundaries
            tables.write_table(to_table(examples[start : {0: 7, 7: 19, 19: 25}[start]], Example))
    assert tables.count == 25 and [len(b) for b in iter_batches(tmp_path / "tables", Example, 100)] == [10, 10, 5]
    assert read_parquet(tmp_path / "tables", Example) == read_parquet(tmp_path / "rows", Example) == examples
    with TableShards(tmp_path / "parts", Example) as parts:
        parts.write_table(to_table(examples[:3], Example))
        parts.write_table(to_table([], Example))  # a shard whose rows were all dropped: still a shard
        parts.write_table(to_table(examples[3:8], Example))
    assert [t.num_rows for t in iter_tables(tmp_path / "parts", 100)] == [3, 5] and parts.finished == 3
    assert read_parquet(tmp_path / "parts", Example) == examples[:8]
    with TableShards(tmp_path / "parts", Example, keep=1) as resumed:  # a killed run's first shard stays
        assert resumed.count == 3 and [p.name for p in parquet_files(tmp_path / "parts")] == ["part-00000.parquet"]
        resumed.write_table(to_table(examples[3:4], Example))
    assert read_parquet(tmp_path / "parts", Example) == examples[:4]


def test_shards_are_byte_identical_for_the_same_records(tmp_path):
    for run in ("a", "b"):
        with ShardWriter(tmp_path / run, Example, shard_rows=7) as shards:
            for e in _many(20):
                shards.write(e)
    a, b = parquet_files(tmp_path / "a"), parquet_files(tmp_path / "b")
    assert len(a) == 3 and [p.read_bytes() for p in a] == [p.read_bytes() for p in b]


def test_no_records_give_one_valid_empty_shard_and_an_old_shard_is_removed(tmp_path):
    import pyarrow.parquet as pq

    folder = tmp_path / "examples"
    with ShardWriter(folder, Example, shard_rows=2) as shards:
        for e in _many(5):
            shards.write(e)
    with ShardWriter(folder, Example, shard_rows=2):
        pass
    assert [p.name for p in parquet_files(folder)] == ["part-00000.parquet"]
    assert pq.read_schema(folder / "part-00000.parquet").names == ["messages", "origin", "meta", "id"]
    assert read_parquet(folder, Example) == [] and list(iter_batches(folder, Example, 10)) == []
    write_parquet(tmp_path / "prompts.parquet", [], Prompt)
    assert read_parquet(tmp_path / "prompts.parquet", Prompt) == []
    with pytest.raises(ValueError, match="data.shard_rows >= 1"):
        ShardWriter(tmp_path / "bad", Example, shard_rows=0)
