"""The newer source formats (WritingPrompts, Alpaca, ShareGPT, OpenAI messages, prompt lists) and glob paths,
on miniature files the tests write, malformed rows included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lessismore.records import Dropped, Example, Message, Origin, Prompt, json_line
from lessismore.sources.writingprompts import detokenize
from tests.specs import read_source


def _split(records):
    records = list(records)
    return [r for r in records if not isinstance(r, Dropped)], [r for r in records if isinstance(r, Dropped)]


def _lines(path: Path, lines: list) -> Path:
    """A JSONL-ish file: dicts become JSON, str and bytes are written as they are (broken lines, bad bytes)."""
    raw = [ln if isinstance(ln, bytes) else (ln if isinstance(ln, str) else json.dumps(ln)).encode() for ln in lines]
    path.write_bytes(b"\n".join(raw) + b"\n")
    return path


def _reasons(drops: list[Dropped]) -> list[tuple[str, str]]:
    return [(d.reason, d.origin.row) for d in drops]


# ----------------------------------------------------------------------------------------------------------------
# r/WritingPrompts CSV

WP_CSV = r"""row_id,prompt,story,completion
11,"[ WP ] You summon the devil . He replies `` I 've got millions . ''
","`` No , '' I said . <newline> <newline> He did n't listen .",a gpt story
12,[ OT ] SatChat : what do you write ?,I write poems.,
13,"[WP] [ CW ] Write without the letter e .","",
14,A prompt with no tag [ NSFW ],A story.,
15,[ META ] Rules,Read them.,
"""


def test_writingprompts_tags_detokenising_and_drops(tmp_path):
    path = tmp_path / "wp.csv"
    path.write_text(WP_CSV, encoding="utf-8")
    kept, drops = _split(read_source("wp", "writingprompts_csv", str(path), "train", "reddit", index=0))
    assert [(e.origin.row, e.meta["tags"], e.prompt, e.response) for e in kept] == [
        (
            "11",
            ["WP"],
            'You summon the devil. He replies "I\'ve got millions."',
            '"No," I said.\n\nHe didn\'t listen.',
        ),
        ("13", ["WP", "CW"], "Write without the letter e.", ""),  # an empty story: validate judges content
        ("14", ["NSFW"], "A prompt with no tag", "A story."),
    ]
    assert kept[0].origin == Origin("wp", str(path), "11", "reddit")
    assert kept[0].meta == {"tags": ["WP"], "format": "writingprompts_csv", "split": "train"}
    assert _reasons(drops) == [("not_a_prompt", "12"), ("not_a_prompt", "15")]
    assert drops[0].detail.startswith(f"{path}:4: tagged [OT]: an off-topic discussion")
    assert drops[1].record == {"prompt": "[ META ] Rules", "tags": ["META"]}


@pytest.mark.parametrize(
    ("text", "expected"),
    [  # blanks: a run of them is one space, none around a line break; a lone space or line break stays
        ("a\t b  c \n  d . ( e )\tf", "a b c\nd. (e) f"),
        ("x  \n\n \n\n y", "x\n\ny"),
        ("no blanks\nat all", "no blanks\nat all"),
        ("\tTab\tstart ’ s", "Tab start’s"),
    ],
)
def test_detokenize_blanks(text, expected):
    assert detokenize(text) == expected


def test_writingprompts_test_split_bad_bytes_and_no_row_id(tmp_path):
    path = tmp_path / "wp.csv"
    data = 'prompt,story\n"[ WP ] Why , though ?",Because.\n[ WP ] caf\xe9 ?,x\n"[ IP ] A tower",\n'
    path.write_bytes(data.encode("utf-8").replace("caf\xe9".encode(), b"caf\xe9"))  # a latin-1 byte
    kept, drops = _split(read_source("wp", "writingprompts_csv", str(path), "test", index=0))
    assert [(p.text, p.split, p.origin.row, p.meta["tags"]) for p in kept] == [
        ("Why, though?", "test", "2", ["WP"]),
        ("A tower", "test", "4", ["IP"]),
    ]
    assert all(isinstance(p, Prompt) for p in kept) and _reasons(drops) == [("invalid_utf8", "3")]


def test_writingprompts_header_without_story_column_is_an_error(tmp_path):
    path = tmp_path / "wp.csv"
    path.write_text("prompt,text\na,b\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"wp\.csv: no story column .*prompt,story"):
        list(read_source("wp", "writingprompts_csv", str(path), "train"))


# ----------------------------------------------------------------------------------------------------------------
# Alpaca JSON (a list) and JSONL


def test_alpaca_json_list(tmp_path):
    items = [
        {"instruction": "Add the numbers.", "input": "2, 3", "output": "5"},
        {"instruction": "Say hi.", "input": "", "output": "Hi!"},
        {"instruction": "Count.", "input": "", "output": 3},
        {"input": "x", "output": "y"},
        "not an object",
        {"instruction": "Name a colour.", "input": " ", "output": ""},
        {"instruction": "caf\udce9", "output": "x"},  # a byte that is not UTF-8 (see below)
    ]
    path = tmp_path / "alpaca.json"
    raw = json.dumps(items, indent=1, ensure_ascii=False).encode("utf-8", "surrogateescape")
    path.write_bytes(b"\xef\xbb\xbf" + raw)
    kept, drops = _split(read_source("alpaca", "alpaca_json", str(path), "train", "CC BY-NC 4.0", index=0))
    assert [(e.origin.row, e.messages) for e in kept] == [
        ("0", (Message("user", "Add the numbers.\n\n2, 3"), Message("assistant", "5"))),
        ("1", (Message("user", "Say hi."), Message("assistant", "Hi!"))),
        ("5", (Message("user", "Name a colour."), Message("assistant", ""))),
    ]
    assert kept[0].meta == {"has_input": True, "n_turns": 2, "format": "alpaca_json", "split": "train"}
    assert _reasons(drops) == [("bad_type", "2"), ("missing_field", "3"), ("bad_shape", "4"), ("invalid_utf8", "6")]
    assert drops[0].detail == f'{path} item 2: "output" is int, not a string; quote it in the file'
    assert 'no "instruction"' in drops[1].detail


def test_a_lone_surrogate_escape_is_quarantined_not_a_crash(tmp_path):
    """JSON may escape half of a UTF-16 pair ("\\ud800" alone): json.loads gives a str no UTF-8 can hold, which
    crashed ingest at the record's id. In a turn or in a field kept in meta, the row is dropped, its text written
    with the escape; its neighbours are kept. The same in JSONL and chat formats (one check, in SourceFile.record)."""
    path = tmp_path / "alpaca.json"
    path.write_text(
        '[{"instruction": "Say hi \\ud800 now.", "input": "", "output": "Hi!"},\n'
        ' {"instruction": "Say bye.", "input": "", "output": "Bye!"}]',
        encoding="utf-8",
    )
    kept, drops = _split(read_source("alpaca", "alpaca_json", str(path), "train", index=0))
    assert [e.prompt for e in kept] == ["Say bye."]
    assert _reasons(drops) == [("invalid_unicode", "0")]
    assert "'Say hi \\\\ud800 now." in drops[0].detail and "fix that escape in the file" in drops[0].detail
    assert drops[0].record == {"raw": "Say hi \\ud800 now.\n\nHi!"}
    chat = _lines(
        tmp_path / "chat.jsonl",
        [
            '{"id": "a", "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo \\udfff"}]}',
            '{"id": "b", "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]}',
        ],
    )
    kept, drops = _split(read_source("chat", "sharegpt_jsonl", str(chat), "train", index=0))
    assert [e.response for e in kept] == ["Hello"] and _reasons(drops) == [("invalid_unicode", "1")]


def test_an_integer_past_64_bits_is_quarantined_and_written(tmp_path):
    """orjson writes the quarantine and the ids but has no integer past 64 bits: such a row's drop goes through json
    instead, its number written whole, its id stable."""
    path = tmp_path / "alpaca.json"
    path.write_text('[{"instruction": "Big", "output": 123456789012345678901234567890}]', encoding="utf-8")
    _, drops = _split(read_source("alpaca", "alpaca_json", str(path), "train", index=0))
    assert _reasons(drops) == [("bad_type", "0")]
    again = _split(read_source("alpaca", "alpaca_json", str(path), "train", index=0))[1]
    assert again[0].id == drops[0].id
    line = json.loads(json_line(drops[0]))
    assert line["record"]["output"] == 123456789012345678901234567890 and line["id"] == drops[0].id


def test_alpaca_jsonl_and_a_file_that_is_not_json(tmp_path):
    good = {"instruction": "Why?", "input": "", "output": "Because."}
    path = _lines(tmp_path / "alpaca.jsonl", [good, '{"instruction": "cut', {"instruction": ["x"], "output": "y"}])
    kept, drops = _split(read_source("a", "alpaca_json", str(path), "train", index=0))
    assert [e.prompt for e in kept] == ["Why?"] and _reasons(drops) == [("malformed_json", "2"), ("bad_type", "3")]
    broken = tmp_path / "broken.json"
    broken.write_text('[\n  {"instruction": "a", "output": "b"},\n  {"instruction": "c" "output": "d"}\n]\n')
    (drop,) = read_source("a", "alpaca_json", str(broken), "train", index=0)
    assert (drop.reason, drop.origin.row) == ("malformed_json", "3")
    assert drop.detail.startswith(f"{broken}:3:23: not valid JSON (Expecting ',' delimiter)")
    held_out, _ = _split(read_source("a", "alpaca_json", str(path), "test", index=0))
    assert held_out == [Prompt("Why?", "test", Origin("a", str(path), "1"), {"has_input": False, **held_out[0].meta})]


def test_alpaca_history_stays_a_dialogue_and_entities_are_decoded_once(tmp_path):
    # LLaMA-Factory's shape of LIMA's train set: `history` pairs, a scraped entity or two, code quoting an entity
    items = [
        {
            "instruction": "And the &quot;hobbit&quot; one?",
            "input": "",
            "output": "Tolkien &amp; sons: use `&amp;` in HTML, &amp;lt; stays &lt; once.",
            "history": [["Name a novel.", "The Hobbit."], ["Who wrote it?", "J. R. R. Tolkien."]],
        },
        {"instruction": "Hi", "output": "Hello", "history": [["one turn only"]]},
    ]
    path = tmp_path / "lima.json"
    path.write_text(json.dumps(items), encoding="utf-8")
    kept, drops = _split(read_source("lima", "alpaca_json", str(path), "train", index=0))
    assert [m.role for m in kept[0].messages] == ["user", "assistant"] * 3
    assert [m.content for m in kept[0].messages[:4]] == [
        "Name a novel.",
        "The Hobbit.",
        "Who wrote it?",
        "J. R. R. Tolkien.",
    ]
    assert kept[0].messages[4].content == 'And the "hobbit" one?'
    assert kept[0].messages[5].content == "Tolkien & sons: use `&amp;` in HTML, &lt; stays < once."
    assert kept[0].meta["n_turns"] == 6 and kept[0].meta["entities_decoded"] == 5
    assert _reasons(drops) == [("bad_type", "1")] and "pairs" in drops[0].detail
    # a held-out prompt is one turn: a dialogue there is refused by name, not cut to its last turn
    _, refused = _split(read_source("lima", "alpaca_json", str(path), "test", index=0))
    assert _reasons(refused)[0] == ("multi_turn_prompt", "0")


# ----------------------------------------------------------------------------------------------------------------
# ShareGPT and OpenAI messages


def _turns(*pairs: tuple[str, str], key: str = "from", text: str = "value") -> list[dict]:
    return [{key: who, text: what} for who, what in pairs]


def test_sharegpt_roles_multi_turn_and_drops(tmp_path):
    lines = [
        {"id": "a1", "conversations": _turns(("system", "Be brief."), ("human", "Hi"), ("gpt", "Hello"))},
        {"conversations": _turns(("user", "q1"), ("chatgpt", "a1"), ("human", "q2"), ("assistant", "a2"))},
        {"conversations": _turns(("human", "x"), ("robot", "y"))},
        {"conversations": [{"from": "human", "value": 3}]},
        {"conversations": "Hi"},
        {"conversations": []},
        {"conversations": _turns(("human", "q"), ("human", "again"))},  # kept: the order is validate's call
        b'{"conversations": [{"from": "human", "value": "\xff"}]}',
    ]
    path = _lines(tmp_path / "sharegpt.jsonl", lines)
    kept, drops = _split(read_source("sg", "sharegpt_jsonl", str(path), "train", index=0))
    roles = [[m.role for m in e.messages] for e in kept]
    assert roles == [["system", "user", "assistant"], ["user", "assistant", "user", "assistant"], ["user", "user"]]
    assert kept[0].meta == {"id": "a1", "n_turns": 3, "format": "sharegpt_jsonl", "split": "train"}
    assert (kept[1].prompt, kept[1].response) == ("q1", "a2")
    assert _reasons(drops) == [
        ("unknown_role", "3"),
        ("bad_type", "4"),
        ("bad_shape", "5"),
        ("empty_conversation", "6"),
        ("invalid_utf8", "8"),
    ]
    assert "turn 1 is from 'robot'" in drops[0].detail and drops[0].detail.startswith(f"{path}:3:")


def test_sharegpt_test_split_prompt_is_the_first_user_turn(tmp_path):
    lines = [
        {"conversations": _turns(("system", "Be kind."), ("human", "Why?"))},
        {"conversations": _turns(("system", "Only a system turn."))},
    ]
    path = _lines(tmp_path / "sharegpt.jsonl", lines)
    kept, drops = _split(read_source("sg", "sharegpt_jsonl", str(path), "test", index=0))
    assert [(p.text, p.meta["system"]) for p in kept] == [("Why?", "Be kind.")]
    assert _reasons(drops) == [("no_prompt", "2")]


def test_openai_messages_text_parts_and_what_is_not_text(tmp_path):
    text_parts = [{"type": "text", "text": "Look at"}, {"type": "text", "text": "this."}]
    lines = [
        {
            "messages": _turns(
                ("developer", "Terse."), ("user", "2+2?"), ("assistant", "4"), key="role", text="content"
            )
        },
        {"messages": [{"role": "user", "content": text_parts}, {"role": "assistant", "content": "Seen."}]},
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x.png"}}]}]},
        {
            "messages": [
                {"role": "user", "content": "Weather?"},
                {"role": "assistant", "content": None, "tool_calls": []},
            ]
        },
        {
            "messages": [
                {"role": "user", "content": "Weather?"},
                {"role": "assistant", "content": None, "tool_calls": [{}]},
            ]
        },
        {"messages": [{"role": "tool", "content": "sunny"}]},
        {"messages": {"role": "user"}},
        "not json",
    ]
    path = _lines(tmp_path / "openai.jsonl", lines)
    kept, drops = _split(read_source("oa", "openai_jsonl", str(path), "train", index=0))
    assert [e.messages for e in kept] == [
        (Message("system", "Terse."), Message("user", "2+2?"), Message("assistant", "4")),
        (Message("user", "Look at\nthis."), Message("assistant", "Seen.")),
    ]
    assert isinstance(kept[0], Example) and kept[0].meta["n_turns"] == 3
    assert _reasons(drops) == [
        ("non_text_content", "3"),
        ("bad_type", "4"),
        ("tool_call", "5"),
        ("unknown_role", "6"),
        ("bad_shape", "7"),
        ("malformed_json", "8"),
    ]
    assert "'image_url' part; we train on text only" in drops[0].detail
    assert "tool results are not trained on" in drops[3].detail


# ----------------------------------------------------------------------------------------------------------------
# prompt lists (txt)


def test_prompts_txt(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_bytes(b"\xef\xbb\xbfWhy is the sky blue?\r\n\n   \nName three rivers.  \ncaf\xe9?\n")
    kept, drops = _split(read_source("t", "prompts_txt", str(path), "test", "CC0", index=0))
    assert kept == [
        Prompt(
            "Why is the sky blue?",
            "test",
            Origin("t", str(path), "1", "CC0"),
            {"format": "prompts_txt", "split": "test"},
        ),
        Prompt(
            "Name three rivers.",
            "test",
            Origin("t", str(path), "4", "CC0"),
            {"format": "prompts_txt", "split": "test"},
        ),
    ]
    assert _reasons(drops) == [("invalid_utf8", "5")] and drops[0].detail.startswith(f"{path}:5: not valid UTF-8")


# ----------------------------------------------------------------------------------------------------------------
# paths: globs (each match its own file, sorted), directories


def test_glob_reads_each_file_in_sorted_order_with_its_own_origin(tmp_path):
    for name, prompts in (("b", ["B1"]), ("a", ["A1", "A2"])):
        (tmp_path / name).mkdir()
        (tmp_path / name / "test.txt").write_text("\n".join(prompts) + "\n", encoding="utf-8")
    (tmp_path / "c").mkdir()  # a directory matching the pattern's first part, with no file: skipped
    records = list(read_source("t", "prompts_txt", str(tmp_path / "*" / "test.txt"), "test", index=0))
    assert [(p.text, p.origin.file, p.origin.row) for p in records] == [
        ("A1", str(tmp_path / "a" / "test.txt"), "1"),
        ("A2", str(tmp_path / "a" / "test.txt"), "2"),
        ("B1", str(tmp_path / "b" / "test.txt"), "1"),
    ]


def test_glob_without_match_and_a_directory_name_the_params_key(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"ingest\.sources\[4\]\.path: the glob .*\*\.xml matches no file"):
        read_source("se", "stackexchange_xml", str(tmp_path / "*.xml"), "train", index=4)
    with pytest.raises(IsADirectoryError, match=r"ingest\.sources\[0\]\.path: .* is a directory, not a file"):
        read_source("se", "stackexchange_xml", str(tmp_path), "train", index=0)
    with pytest.raises(ValueError, match=r"'stackexchange_xml' cannot be read from a Hugging Face dataset"):
        read_source("se", "stackexchange_xml", "hf://owner/name", "train", index=0)


def test_stackexchange_glob_site_is_each_files_directory(tmp_path):
    row = '<row Id="1" PostTypeId="1" Title="{t}" Body="" />\n<row Id="2" PostTypeId="2" ParentId="1" Body="ok" />'
    for site, title in (("physics.stackexchange.com", "Why?"), ("cooking.stackexchange.com", "How?")):
        (tmp_path / "se" / site).mkdir(parents=True)
        rows = row.format(t=title)
        (tmp_path / "se" / site / "Posts.xml").write_text(f"<posts>\n{rows}\n</posts>\n", encoding="utf-8")
    examples = list(read_source("se", "stackexchange_xml", str(tmp_path / "se" / "*" / "Posts.xml"), "train", index=0))
    assert [(e.meta["site"], e.prompt, e.origin.file) for e in examples] == [
        ("cooking.stackexchange.com", "How?", str(tmp_path / "se" / "cooking.stackexchange.com" / "Posts.xml")),
        ("physics.stackexchange.com", "Why?", str(tmp_path / "se" / "physics.stackexchange.com" / "Posts.xml")),
    ]
