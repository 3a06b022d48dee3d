"""`lessismore explain`: an example's story from hand-written stage rows (kept with a rewrite, dropped at each stage,
a held-out prompt, a stage not run yet), id prefixes, and the printed tree and table."""

from __future__ import annotations

import pytest
from rich.console import Console

from lessismore.explain import explain_example, load_rows, render_example
from lessismore.records import (
    Dropped,
    Example,
    Message,
    Origin,
    Prompt,
    ShardWriter,
    to_dict,
    write_jsonl,
    write_parquet,
)
from lessismore.trace import render_lineage, sources, trace

SE = {"source": "se_stem", "file": "data/sources/se/Posts.xml", "row": "3/4", "license": "CC BY-SA 4.0"}
WH = {"source": "wikihow", "file": "data/sources/wikihow.csv", "row": "11-15", "license": "CC BY-NC-SA 3.0"}


def _ex(id_: str, origin: dict, text: str = "How?", **meta) -> dict:
    return {"id": id_, "origin": origin, "meta": meta, "messages": [{"role": "user", "content": text}]}


def _row(stage: str, file: str, kind: str, n: int, row: dict) -> dict:
    return {"stage": stage, "file": file, "n": n, "kind": kind, "row": row}


def _drop(stage: str, id_: str, reason: str, record: dict, origin: dict) -> dict:
    return {
        "id": id_,
        "stage": stage,
        "reason": reason,
        "detail": f"{origin['file']} row {origin['row']}: {reason}",
        "origin": origin,
        "record": record,
    }


ROWS = [
    _row("ingest", "data/ingested/examples", "example", 1, _ex("aaaa000000000001", WH, "How to brew?")),
    _row("ingest", "data/ingested/examples", "example", 2, _ex("bbbb000000000002", SE)),
    _row(
        "ingest",
        "data/ingested/prompts.parquet",
        "prompt",
        1,
        {"id": "cccc000000000003", "text": "Why is the sky blue?", "split": "test", "origin": SE, "meta": {}},
    ),
    _row(
        "ingest",
        "data/quarantine/ingest.jsonl",
        "dropped",
        1,
        _drop("ingest", "dddd000000000004", "malformed_xml", {"raw": "<row"}, SE),
    ),
    _row("validate", "data/validated/examples", "example", 1, _ex("aaaa000000000001", WH, "How to brew?")),
    _row("validate", "data/validated/examples", "example", 2, _ex("bbbb000000000002", SE)),
    _row(
        "validate",
        "data/validated/prompts.parquet",
        "prompt",
        1,
        {"id": "cccc000000000003", "text": "Why is the sky blue?", "split": "test", "origin": SE, "meta": {}},
    ),
    # curate rewrote the wikiHow example: a new id, the old one in meta["rewritten_from"]
    _row(
        "curate",
        "data/curated/train.jsonl",
        "example",
        1,
        _ex(
            "eeee000000000005",
            WH,
            "How to brew?",
            rewritten_from="aaaa000000000001",
            rewrites=["this_article"],
            scores={"quality": 4.5, "ifd": 0.8, "combined": 6.1},
        ),
    ),
    _row(
        "curate",
        "data/quarantine/curate.jsonl",
        "dropped",
        1,
        _drop("curate", "ffff000000000006", "near_duplicate:eeee000000000005", _ex("bbbb000000000002", SE), SE),
    ),
]
RULES = "curated: chosen by people, no selection rule (validation, dedup, decontamination only)"
METRICS = {
    "variant": "lima",
    "per_source": {"wikihow": {"candidates": 32, "selected": 24}},
    "rules": {"wikihow": RULES},
}


@pytest.mark.parametrize("query", ["aaaa000000000001", "eeee000000000005", "eeee"])
def test_a_kept_example_is_found_by_its_id_before_or_after_the_rewrite(query):
    story = explain_example(query, ROWS, METRICS)
    assert story["verdict"] == "kept: in the training set" and story["ids"] == ["aaaa000000000001", "eeee000000000005"]
    assert story["origin"] == WH and story["text"] == "How to brew?" and story["reached"] == "curate"
    assert [(s["stage"], s["kind"]) for s in story["steps"]] == [
        ("ingest", "example"),
        ("validate", "example"),
        ("curate", "example"),
    ]
    assert story["kept"] == {
        "id": "eeee000000000005",
        "line": 1,
        "rewrites": ["this_article"],
        "source": "wikihow",
        "source_selected": 24,
        "source_candidates": 32,
        "variant": "lima",
        "rules": RULES,
        "scores": {"quality": 4.5, "ifd": 0.8, "combined": 6.1},
    }


def test_a_dropped_example_says_the_stage_reason_detail_and_the_kept_duplicate():
    for query in ("bbbb000000000002", "ffff000000000006"):  # the example's id or its quarantine entry's
        story = explain_example(query, ROWS)
        assert story["verdict"] == "dropped at curate: near_duplicate" and story["related"] == "eeee000000000005"
        assert story["dropped"]["detail"] == "data/sources/se/Posts.xml row 3/4: near_duplicate:eeee000000000005"
        assert story["ids"] == ["bbbb000000000002"] and story["origin"] == SE


def test_an_ingest_drop_a_prompt_and_a_stage_not_run_yet():
    ingest = explain_example("dddd", ROWS)
    assert ingest["verdict"] == "dropped at ingest: malformed_xml" and ingest["kind"] == "record"
    prompt = explain_example("cccc", ROWS)
    assert prompt["kind"] == "prompt" and prompt["verdict"].startswith("held out: a test prompt")
    assert prompt["text"] == "Why is the sky blue?"
    before_curate = [r for r in ROWS if r["stage"] != "curate"]
    assert "has not run yet" in explain_example("bbbb", before_curate)["verdict"]


def test_unknown_and_ambiguous_ids():
    with pytest.raises(LookupError, match=r"no example, prompt or quarantined record has an id starting with '9'"):
        explain_example("9", ROWS)
    with pytest.raises(LookupError, match=r"'' matches 6 ids; give more characters: aaaa000000000001 \(wikihow,"):
        explain_example("", ROWS)


def test_load_rows_reads_what_the_stages_write(tmp_path):
    origin = Origin(**SE)
    example = Example(messages=(Message("user", "Why?"), Message("assistant", "Because.")), origin=origin)
    with ShardWriter(tmp_path / "data/ingested/examples", Example, shard_rows=1) as shards:
        shards.write(example)
    write_parquet(
        tmp_path / "data/ingested/prompts.parquet", [Prompt(text="Name a river.", split="dev", origin=origin)]
    )
    drop = Dropped("validate", "too_short", origin, "row 3/4: short", record=to_dict(example))
    write_jsonl(tmp_path / "data/quarantine/validate.jsonl", [drop])
    rows = load_rows(tmp_path)
    assert [(r["stage"], r["kind"], r["n"]) for r in rows] == [
        ("ingest", "example", 1),
        ("ingest", "prompt", 1),
        ("validate", "dropped", 1),
    ]
    story = explain_example(example.id, rows)
    assert story["verdict"] == "dropped at validate: too_short" and story["origin"] == SE


def _text(renderable) -> str:
    console = Console(record=True, width=200)
    console.print(renderable)
    return console.export_text()


def test_render_example_and_lineage():
    text = _text(render_example(explain_example("bbbb", ROWS)))
    assert "dropped at curate: near_duplicate" in text and "lessismore explain eeee000000000005" in text
    assert "se_stem · data/sources/se/Posts.xml row 3/4 · CC BY-SA 4.0" in text
    kept = _text(render_example(explain_example("eeee", ROWS, METRICS)))
    assert "scores quality 4.5, ifd 0.8, combined 6.1" in kept
    stages = {
        "ingest": {
            "cmd": "python stages/ingest.py",
            "params": {"ingest.n": 2},
            "deps": {"data/sources": {"md5": "5a.dir"}},
            "outs": {"data/ingested": {"md5": "1e.dir", "size": 2048, "nfiles": 2}},
        },
        "curate": {
            "cmd": "python stages/curate.py",
            "params": {},
            "deps": {"data/ingested": {"md5": "0ld.dir"}},
            "outs": {"metrics/curate.json": {"md5": "m2"}},
        },
    }
    chain = trace(stages, "curate", ["metrics/curate.json"])
    result = {
        "target": "metrics/curate.json:n",
        "key": "n",
        "value": 7,
        "chain": chain,
        "sources": sources(chain),
        "git": {"commit": "abc123", "dirty": True},
    }
    text = _text(render_lineage(result))
    assert "metrics/curate.json:n = 7" in text and "stage curate" in text and "stage ingest" in text
    assert "data/ingested  md5 0ld.dir" in text and "(changed since this stage ran)" in text and "<- ingest" in text
    assert "writes data/ingested  md5 1e.dir  2.05 kB, 2 files" in text and "ingest.n = 2" in text
    assert "data/sources  md5 5a.dir" in text and "(source)" in text and "git commit abc123 + uncommitted" in text
