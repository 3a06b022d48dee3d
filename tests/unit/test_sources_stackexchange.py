"""Stack Exchange data-dump Posts.xml reader and HTML -> markdown, on miniature dumps (malformed ones too)."""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import quoteattr

import pytest

from lessismore.records import Dropped, Message, Origin, Prompt, example_id
from lessismore.sources.html import html_to_markdown
from lessismore.sources.stackexchange import read_stackexchange_xml


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
        ("no_answer", "2"),
        ("orphan_answer", "10"),  # under its own Id, not its missing question's
    ]
    assert "Posts.xml:12: answer 10 answers question 99, which is not in this file" in drops[4].detail
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
