"""Source adapters on miniature files in each real format, malformed inputs included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lessismore.config import SOURCE_FORMATS
from lessismore.records import Dropped, Example, Message, Origin, Prompt
from lessismore.sources import READERS
from lessismore.sources.lima import read_lima_jsonl
from lessismore.sources.prompts import read_prompts_jsonl
from lessismore.sources.wikihow import read_wikihow_csv
from tests.specs import read_source


def _split(records):
    kept = [r for r in records if not isinstance(r, Dropped)]
    return kept, [r for r in records if isinstance(r, Dropped)]


# ----------------------------------------------------------------------------------------------------------------
# wikiHow CSV, both shapes

STEPS_CSV = (
    "title,heading,paragraph\n"
    "How to Boil an Egg: 5 Steps (with Pictures) - wikiHow,Fill a pot.,"
    '"Fill a pot. Use cold water.[1] X Research source"\n'
    '3 Ways to Fold a Shirt - wikiHow,Lay it flat.,"Lay it flat. Smooth\nthe wrinkles."\n'
    "How to Boil an Egg: 5 Steps (with Pictures) - wikiHow,,Wait ten minutes.\n"
    "How to Boil an Egg: 5 Steps (with Pictures) - wikiHow,too,many,fields\n"
)


def test_wikihow_steps_shape(tmp_path):
    path = tmp_path / "wikihow.csv"
    path.write_text(STEPS_CSV, encoding="utf-8")
    kept, drops = _split(list(read_wikihow_csv(str(path), "wikihow", "CC BY-NC-SA 3.0", "train")))
    assert [(e.prompt, e.response, e.origin.row) for e in kept] == [
        ("How to Boil an Egg?", "1. **Fill a pot.** Use cold water.\n2. Wait ten minutes.", "2,5"),
        ("How to Fold a Shirt?", "1. **Lay it flat.** Smooth the wrinkles.", "3"),
    ]
    assert kept[0].meta == {
        "title": "How to Boil an Egg: 5 Steps (with Pictures) - wikiHow",
        "shape": "steps",
        "n_rows": 2,
        "format": "wikihow_csv",
        "split": "train",
    }
    assert [(d.reason, d.origin.row) for d in drops] == [("malformed_csv", "6")]
    assert "wikihow.csv:6: 4 fields, the header has 3" in drops[0].detail


def test_wikihow_summary_shape_gathers_rows_and_drops_bad_bytes(tmp_path):
    path = tmp_path / "wikihow.csv"
    data = (
        'title,result\nMake Tea,"1.  Boil water.  \n2. Steep the bag. "\nTune a Guitar,"1. Pluck."\n'
        'Make Tea," • Kettle\n • Tea bag"\nBad Bytes,"caf\xe9"\n'
    )
    path.write_bytes(data.encode("utf-8").replace(b"caf\xc3\xa9", b"caf\xe9"))  # one latin-1 byte: invalid UTF-8
    kept, drops = _split(list(read_wikihow_csv(str(path), "wh", "", "train")))
    assert [(e.prompt, e.response, e.origin.row) for e in kept] == [
        ("How to Make Tea?", "1. Boil water.\n2. Steep the bag.\n\n- Kettle\n- Tea bag", "2,5"),
        ("How to Tune a Guitar?", "1. Pluck.", "4"),
    ]
    assert [(d.reason, d.origin.row) for d in drops] == [("invalid_utf8", "7")]


def test_wikihow_unknown_header_lists_the_accepted_ones(tmp_path):
    path = tmp_path / "wikihow.csv"
    path.write_text("headline,text\na,b\n", encoding="utf-8")
    with pytest.raises(ValueError, match="accepted headers: title,heading,paragraph or title,result"):
        list(read_wikihow_csv(str(path), "wh", "", "train"))


# ----------------------------------------------------------------------------------------------------------------
# GAIR/lima JSONL and prompt JSONL


def _jsonl(path: Path, lines: list) -> Path:
    raw = [ln if isinstance(ln, bytes) else (ln if isinstance(ln, str) else json.dumps(ln)).encode() for ln in lines]
    path.write_bytes(b"\n".join(raw) + b"\n")
    return path


def test_lima_jsonl(tmp_path):
    path = _jsonl(
        tmp_path / "train.jsonl",
        [
            {"conversations": ["Hi?", "Hello."], "source": "authors"},
            '{"conversations": ["cut off", "mid',
            {"conversations": ["a", "b", "c"], "source": "x"},
            "",
            {"conversations": [], "source": "x"},
            {"conversations": ["q1", "a1", "q2", ""], "source": "multi_turn"},
            b'{"conversations": ["\xff", "b"]}',
            {"turns": ["a", "b"]},
        ],
    )
    kept, drops = _split(list(read_lima_jsonl(str(path), "handwritten", "CC BY 4.0", "train")))
    assert [e.messages for e in kept] == [
        (Message("user", "Hi?"), Message("assistant", "Hello.")),
        (Message("user", "q1"), Message("assistant", "a1"), Message("user", "q2"), Message("assistant", "")),
    ]
    assert kept[0].origin == Origin("handwritten", str(path), "1", "CC BY 4.0")
    assert kept[1].meta == {"source": "multi_turn", "n_turns": 4, "format": "lima_jsonl", "split": "train"}
    assert [(d.reason, d.origin.row) for d in drops] == [
        ("malformed_json", "2"),
        ("odd_turns", "3"),
        ("empty_conversation", "5"),
        ("invalid_utf8", "7"),
        ("bad_shape", "8"),
    ]
    assert drops[0].detail.startswith(f"{path}:2: not valid JSON (Unterminated string")


def test_lima_jsonl_test_split_gives_prompts(tmp_path):
    path = _jsonl(tmp_path / "test.jsonl", [{"conversations": ["Tell me a joke."], "source": "reddit"}])
    assert list(read_lima_jsonl(str(path), "t", "", "test")) == [
        Prompt(
            "Tell me a joke.",
            "test",
            Origin("t", str(path), "1", ""),
            {"source": "reddit", "n_turns": 1, "format": "lima_jsonl", "split": "test"},
        )
    ]


def test_prompts_jsonl(tmp_path):
    path = _jsonl(
        tmp_path / "test.jsonl",
        [
            {"prompt": "Why?", "category": "explanation", "id": "t-1"},
            {"text": "How?"},
            {"conversations": ["What?"], "source": "lima"},
            {"question": "no text key"},
            "[1, 2]",
        ],
    )
    kept, drops = _split(list(read_prompts_jsonl(str(path), "test_prompts", "CC BY 4.0", "test")))
    assert [(p.text, p.split, p.origin.row) for p in kept] == [
        ("Why?", "test", "1"),
        ("How?", "test", "2"),
        ("What?", "test", "3"),
    ]
    assert kept[0].meta == {"category": "explanation", "id": "t-1", "format": "prompts_jsonl", "split": "test"}
    assert kept[2].meta["source"] == "lima"
    assert [(d.reason, d.origin.row) for d in drops] == [("no_prompt", "4"), ("bad_shape", "5")]


# ----------------------------------------------------------------------------------------------------------------
# the registry and its errors


def test_registry_covers_every_config_format():
    assert sorted(READERS) == sorted(SOURCE_FORMATS)


def test_missing_file_names_the_params_key_and_the_fix(tmp_path):
    with pytest.raises(
        FileNotFoundError, match=r"ingest\.sources\[2\]\.path: .*nope\.jsonl does not exist.*fix the path"
    ):
        read_source("dev", "prompts_jsonl", str(tmp_path / "nope.jsonl"), "dev", index=2)
    with pytest.raises(ValueError, match=r"ingest\.sources\[name=x\]\.format: 'csv' is not a known source format"):
        read_source("x", "csv", str(tmp_path), "train")


def test_ingest_source_dispatches(tmp_path):
    path = _jsonl(tmp_path / "p.jsonl", [{"prompt": "Hi"}])
    (record,) = read_source("p", "prompts_jsonl", str(path), "dev", "L", index=0)
    assert isinstance(record, Prompt) and record.origin == Origin("p", str(path), "1", "L")
    assert not isinstance(record, Example)


def test_wikihow_empty_step_is_quarantined_and_the_article_kept(tmp_path):
    path = tmp_path / "wikihow.csv"
    path.write_text(
        "title,heading,paragraph\n"
        "How to Iron a Shirt,Heat the iron.,Heat the iron. Use the cotton setting.\n"
        "How to Iron a Shirt,Do the cuffs.,\n"
        "How to Iron a Shirt,Hang it up.,Hang it up. Let it cool on a hanger.\n",
        encoding="utf-8",
    )
    out = list(read_wikihow_csv(str(path), "wh", "CC", "train"))
    dropped = [r for r in out if isinstance(r, Dropped)]
    (article,) = [r for r in out if isinstance(r, Example)]
    assert [(d.reason, d.origin.row) for d in dropped] == [("empty_step", "3")]
    assert "Do the cuffs" not in article.response and article.response.count("\n") == 1
    assert article.origin.row == "2,4"
