"""Source adapters on miniature files in each real format, malformed inputs included."""

from __future__ import annotations

import json
from pathlib import Path
from xml.sax.saxutils import quoteattr

import pytest

from lessismore.config import SOURCE_FORMATS
from lessismore.records import Dropped, Example, Message, Origin, Prompt, example_id
from lessismore.sources import READERS, ingest_source
from lessismore.sources.html import html_to_markdown
from lessismore.sources.lima import read_lima_jsonl
from lessismore.sources.prompts import read_prompts_jsonl
from lessismore.sources.stackexchange import read_stackexchange_xml
from lessismore.sources.wikihow import read_wikihow_csv


def _split(records):
    kept = [r for r in records if not isinstance(r, Dropped)]
    return kept, [r for r in records if isinstance(r, Dropped)]


# ----------------------------------------------------------------------------------------------------------------
# Stack Exchange Posts.xml


def _row(**attrs: str) -> str:
    """One data-dump <row/> on one line, attribute values escaped as the dump escapes them (HTML inside)."""
    return "  <row " + " ".join(f"{k}={quoteattr(v)}" for k, v in attrs.items()) + " />"


ANSWER_4 = (
    "<p>Use:</p>\n\n<pre><code>ls -la\n\n\nls -1\n</code></pre>\n\n"
    "<ul>\n<li><code>-l</code> long</li>\n<li><code>-a</code> all</li>\n</ul>\n"
)
POSTS = "\n".join(
    [
        '\ufeff<?xml version="1.0" encoding="utf-8"?>',
        "<posts>",
        _row(Id="3", PostTypeId="2", ParentId="1", Score="7", Body="<p>Early answer.</p>"),
        _row(
            Id="1",
            PostTypeId="1",
            AcceptedAnswerId="4",
            Score="12",
            Title="How do I list files?",
            Tags="<shell><ls>",
            Body="<p>I need <code>ls</code> help.</p>\n",
        ),
        _row(Id="2", PostTypeId="1", Score="1", Title="Nobody answered", Tags="|misc|", Body="<p>Hello?</p>"),
        _row(Id="4", PostTypeId="2", ParentId="1", Score="7", Body=ANSWER_4),
        _row(Id="5", PostTypeId="1", Score="3", Title="Pipes?", Tags="|bash|pipes|", Body=""),
        _row(Id="6", PostTypeId="2", ParentId="5", Score="2", Body="<p>low</p>"),
        '  <row Id="8" PostTypeId="2" ParentId="5" Score="11" Body="a & b" />',  # unescaped &: bad XML
        _row(PostTypeId="1", Title="no id", Body="x"),
        _row(Id="9", PostTypeId="4", Body="tag wiki"),
        _row(Id="10", PostTypeId="2", ParentId="99", Score="1", Body="orphan"),
        _row(Id="7", PostTypeId="2", ParentId="5", Score="9", Body="<p>high</p>"),  # after its question
        "</posts>",
        "",
    ]
)


@pytest.fixture
def posts(tmp_path) -> Path:
    path = tmp_path / "stem" / "Posts.xml"
    path.parent.mkdir()
    path.write_text(POSTS, encoding="utf-8")
    return path


def test_stackexchange_top_answer_per_question(posts):
    kept, drops = _split(list(read_stackexchange_xml(str(posts), "se_stem", "CC BY-SA 4.0", "train")))
    assert [(e.meta["question_id"], e.meta["answer_id"]) for e in kept] == [(1, 4), (5, 7)]
    first = kept[0]
    assert first.messages == (
        Message("user", "How do I list files?\n\nI need `ls` help."),
        Message("assistant", "Use:\n\n```\nls -la\n\n\nls -1\n```\n\n- `-l` long\n- `-a` all"),
    )
    assert first.origin == Origin("se_stem", str(posts), "1/4", "CC BY-SA 4.0")
    assert first.meta == {
        "site": "stem",
        "score": 7,
        "question_score": 12,
        "accepted": True,  # ties with answer 3 at score 7: the accepted one wins
        "tags": ["shell", "ls"],
        "title": "How do I list files?",
        "question_id": 1,
        "answer_id": 4,
        "n_answers": 2,
        "format": "stackexchange_xml",
        "split": "train",
    }
    assert first.id == example_id(first.messages) == "08cef6ef3f32738e"
    second = kept[1]  # highest score wins over an unaccepted lower one; empty body -> title alone
    assert (second.prompt, second.response, second.meta["tags"], second.meta["accepted"]) == (
        "Pipes?",
        "high",
        ["bash", "pipes"],
        False,
    )
    assert second.meta["n_answers"] == 2  # the malformed answer 8 is not counted
    reasons = [(d.reason, d.origin.row) for d in drops]
    assert reasons == [
        ("malformed_xml", "9"),
        ("malformed_xml", "10"),
        ("not_qa", "9"),
        ("orphan_answer", "99"),
        ("no_answer", "2"),
    ]
    assert "Posts.xml:9:" in drops[0].detail and "a & b" in drops[0].record["raw"]
    assert "numeric Id" in drops[1].detail
    assert all(d.detail.startswith(f"{posts}:") for d in drops)  # every drop names its file


def test_stackexchange_is_deterministic_and_dev_split_gives_prompts(posts):
    again = _split(list(read_stackexchange_xml(str(posts), "se_stem", "x", "train")))[0]
    assert [e.id for e in again] == [
        e.id for e in _split(list(read_stackexchange_xml(str(posts), "s", "x", "train")))[0]
    ]
    prompts, _ = _split(list(read_stackexchange_xml(str(posts), "se_dev", "x", "dev")))
    assert [type(p) for p in prompts] == [Prompt, Prompt]
    assert prompts[0].text == "How do I list files?\n\nI need `ls` help." and prompts[0].split == "dev"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("title,heading\nfoo,bar\n", ":1:0: not XML"),
        ("", ":1:0: not XML"),
        ("<users>\n<row Id='1'/>\n</users>", "root is <users>"),
    ],
)
def test_stackexchange_whole_file_not_posts_xml_is_one_drop(tmp_path, text, where):
    path = tmp_path / "Posts.xml"
    path.write_text(text, encoding="utf-8")
    drops = list(read_stackexchange_xml(str(path), "se", "", "train"))
    assert [d.reason for d in drops] == ["malformed_xml"]
    assert where in drops[0].detail and "Posts.xml" in drops[0].detail


def test_stackexchange_invalid_utf8_row_and_truncated_file(tmp_path):
    path = tmp_path / "Posts.xml"
    rows = [
        b'<posts>\n<row Id="1" PostTypeId="1" Title="T" Body="q" />\n',
        b'<row Id="2" PostTypeId="2" ParentId="1" Score="1" Body="caf\xe9" />\n',
        b'<row Id="3" PostTypeId="2" ParentId="1" Score="0" Body="fine" />\n',
    ]
    path.write_bytes(b"".join(rows))  # no </posts>: a truncated extraction
    kept, drops = _split(list(read_stackexchange_xml(str(path), "se", "", "train")))
    assert [(d.reason, d.origin.row) for d in drops] == [("invalid_utf8", "3"), ("malformed_xml", "eof")]
    assert "not valid UTF-8" in drops[0].detail and "truncated" in drops[1].detail
    assert [e.response for e in kept] == ["fine"]


def test_html_to_markdown_keeps_code_and_lists():
    html = "<p>Run <em>this</em>:</p>\n<pre><code>x = 1\n\n\n\ny = a_b * 2\n</code></pre>\n\n\n"
    html += "<ol><li>one</li><li>two</li></ol>"
    assert html_to_markdown(html) == "Run *this*:\n\n```\nx = 1\n\n\n\ny = a_b * 2\n```\n\n1. one\n2. two"
    assert html_to_markdown("<p>$a_1 * b_2$</p><img src='x.png' alt='enter image description here'>") == "$a_1 * b_2$"


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
        ingest_source("dev", "prompts_jsonl", str(tmp_path / "nope.jsonl"), "dev", index=2)
    with pytest.raises(ValueError, match=r"ingest\.sources\[name=x\]\.format: 'csv' is not a known source format"):
        ingest_source("x", "csv", str(tmp_path), "train")


def test_ingest_source_dispatches(tmp_path):
    path = _jsonl(tmp_path / "p.jsonl", [{"prompt": "Hi"}])
    (record,) = ingest_source("p", "prompts_jsonl", str(path), "dev", "L", index=0)
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
