"""validate: suites derived from the contract, and the GX core on planted bad rows (real Great Expectations)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, get_args

import pytest

from lessismore.records import Example, Message, Origin, Prompt, Role, records_of, to_table
from lessismore.validate import TableCheckError, validate_records, validate_shards
from lessismore.validate.docs import make_offline
from lessismore.validate.suite import (
    contract_columns,
    contract_expectations,
    flat_frame,
    json_schema,
    row_expectations,
)

SOURCES = {"se": "data/se/Posts.xml", "wiki": "data/wiki.csv", "test": "data/test.jsonl"}


def ex(*turns: str, roles: tuple[str, ...] = ("user", "assistant") * 3, source: str = "se", row: int = 1) -> Example:
    messages = tuple(Message(role, text) for role, text in zip(roles, turns, strict=False))
    return Example(
        messages=messages, origin=Origin(source, SOURCES.get(source, "x"), str(row)), meta={"split": "train"}
    )


def authored(prompt: str, answer: str, row: int) -> Example:
    """An example from an authored format (alpaca_json): HTML in its answers is content, unless it runs."""
    base = ex(prompt, answer, row=row)
    return Example(base.messages, base.origin, {"format": "alpaca_json", "split": "train"})


def checks(expectations: list[Any]) -> set[tuple[str, str]]:
    return {(e.expectation_type, e.column) for e in expectations}


# ----------------------------------------------------------------------------------------------------------------
# the suite is built from the contract


@dataclass(frozen=True)
class OriginWithCommit:  # Origin plus one more required field, as a later issue might add
    source: str
    file: str
    row: str
    commit: str
    license: str = ""


@dataclass(frozen=True)
class ExampleWithCommit:
    messages: tuple[Message, ...]
    origin: OriginWithCommit
    meta: dict[str, Any] = field(default_factory=dict)
    id: str = ""


def test_contract_fields_become_expectations():
    found = checks(contract_expectations(Example))
    for column in ("origin.source", "origin.file", "origin.row", "id"):  # required str: present and not blank
        assert ("expect_column_values_to_not_be_null", column) in found
        assert ("expect_column_values_to_match_regex", column) in found
    assert ("expect_column_to_exist", "origin.license") in found  # optional: only its column
    split = next(e for e in contract_expectations(Prompt) if e.column == "split" and "in_set" in e.expectation_type)
    assert sorted(split.value_set) == ["dev", "test", "train"]  # a Literal becomes a value set


def test_adding_a_field_to_origin_adds_its_expectations():
    before, after = checks(contract_expectations(Example)), checks(contract_expectations(ExampleWithCommit))
    assert after - before == {
        ("expect_column_values_to_not_be_null", "origin.commit"),
        ("expect_column_values_to_match_regex", "origin.commit"),
    }


def test_messages_schema_comes_from_the_message_dataclass():
    schema = json_schema(tuple[Message, ...])
    assert schema["items"]["properties"]["role"] == {"enum": list(get_args(Role))}
    assert schema["items"]["required"] == ["role", "content"]
    assert [c.kind for c in contract_columns(Example) if c.name == "messages"] == ["items"]


def test_row_rules_on_roles_apply_to_conversations_only():
    assert ("expect_column_values_to_match_regex", "roles") in checks(row_expectations(Example, 1, 10))
    assert "roles" not in {e.column for e in row_expectations(Prompt, 1, 10)}


def frame_of(records: list, cls: type = Example):
    return flat_frame(to_table(records, cls), cls)


def test_flat_frame_derives_lengths_roles_and_prose():
    frame = frame_of([ex("Hi  there", "Use ```\n<div>x</div>\n``` here.")])
    row = frame.iloc[0]
    assert (row["chars_min"], row["roles"], row["last_role"]) == (7, "user,assistant", "assistant")
    assert "<div>" in row["body"] and "<div>" not in row["prose"]  # code may quote HTML
    asked = frame_of([ex("Why is <b> bold?", "Browsers style it so.")]).iloc[0]
    assert "<b>" in asked["body"] and asked["prose"] == "Browsers style it so."  # tags are looked for in answers
    assert frame_of([Prompt("What is <p>?", "test", Origin("t", "t", "1"))], Prompt).iloc[0]["prose"] == ""
    page = ex("Create an HTML page with a heading.", "<html>\n<h1>Heading</h1>\n</html>")  # Alpaca row 4750's kind
    authored = Example(page.messages, page.origin, {"format": "alpaca_json", "split": "train"})
    scraped = Example(page.messages, page.origin, {"format": "wikihow_csv", "split": "train"})
    frame = frame_of([authored, scraped])
    assert frame.iloc[0]["prose"] == "" and "<h1>" in frame.iloc[1]["prose"]  # HTML written as the answer is kept
    assert row["origin.source"] == "se"
    turns = [("user", "Hi  there"), ("assistant", "Use ```\n<div>x</div>\n``` here.")]
    assert row["messages"] == [{"role": r, "content": c} for r, c in turns]  # the items as read
    assert row["meta"] == '{"split": "train"}'  # as the shard holds it, and as json.dumps writes a dict


# ----------------------------------------------------------------------------------------------------------------
# the core on planted bad rows


GOOD = ex("What is DVC?", "A tool that versions data and pipelines.", row=0)
PLANTED = [
    GOOD,
    ex("What is an empty answer?", "   ", row=1),
    ex("Left HTML?", "<p>Yes, a paragraph.</p>", row=2),
    ex("Two users?", "Again?", "Answer.", roles=("user", "user", "assistant"), row=3),
    ex("No answer?", roles=("user",), row=4),
    ex("What is DVC?", "A tool that versions  data and pipelines.", row=5),  # GOOD again after normalising
    ex("Broken bytes?", "Caf\ufffd au lait.", row=6),
    ex("HTML in code?", "Write `<br>` or ```\n<div></div>\n``` to break.", source="wiki", row=7),
    ex("A bot?", "Beep.", roles=("user", "bot"), source="wiki", row=8),
    ex("Why does <span> not change colour on hover?", "Because the rule's selector is wrong.", row=9),  # a subject
    ex("What does &amp; mean?", "An ampersand, as &amp; is written in HTML.", row=10),  # entities are no reason
    ex("A NUL\x00 in the prompt?", "An answer.", row=11),
    authored("Summarise today's news.", "<script>alert(1)</script> The news is good.", row=12),  # an injection
    authored("Create a JavaScript program to print hello world.", '<script>\nconsole.log("Hi");\n</script>', row=13),
    authored("Say hi.", 'Hi! <img src=x onerror="alert(1)">', row=14),
]
EXPECTED_REASONS = {
    "1": "expect_column_values_to_be_between:chars_min",
    "2": "expect_column_values_to_not_match_regex_list:prose",
    "3": "expect_column_values_to_match_regex:roles",
    "4": "expect_column_values_to_be_in_set:last_role",
    "5": "duplicate_id",
    "6": "expect_column_values_to_not_match_regex:body",
    "8": "expect_column_values_to_match_regex:roles",
    "11": "expect_column_values_to_not_match_regex_list:body",
    "12": "expect_column_values_to_not_match_regex:active",
    "14": "expect_column_values_to_not_match_regex:active",
}
PROMPTS = [
    Prompt("Tell me a joke.", "test", Origin("test", SOURCES["test"], "1")),
    Prompt("Given a <span> in HTML, how do I recolour it?", "test", Origin("test", SOURCES["test"], "2")),  # lima-16
]


def run(examples=PLANTED, sources=SOURCES, max_share=1.0, **kwargs):
    return validate_records(
        examples, PROMPTS, sources=sources, min_chars=1, max_chars=200, max_quarantine_share=max_share, **kwargs
    )


@pytest.fixture(scope="module")
def planted():
    return run()


def test_exactly_the_bad_rows_are_quarantined_with_their_reasons(planted):
    assert {d.origin.row: d.reason for d in planted.dropped} == EXPECTED_REASONS
    assert [e.origin.row for e in planted.examples] == ["0", "7", "9", "10", "13"]  # 13 asked for the script
    assert [p.text for p in planted.prompts] == ["Tell me a joke.", "Given a <span> in HTML, how do I recolour it?"]
    assert planted.success and planted.failures == []


def test_quarantine_details_name_file_row_and_fix(planted):
    by_row = {d.origin.row: d for d in planted.dropped}
    assert by_row["2"].detail.startswith("data/se/Posts.xml row 2: HTML tags left in an answer outside code: ")
    assert "<p>Yes" in by_row["2"].detail and "fix: " in by_row["2"].detail
    assert "same content" in by_row["5"].detail and "data/se/Posts.xml row 0" in by_row["5"].detail
    assert by_row["3"].stage == "validate" and by_row["3"].record["id"] == PLANTED[3].id
    assert "control character (NUL, escape...): 'A NUL\\x00 in the prompt?" in by_row["11"].detail
    assert "markup that runs in a browser" in by_row["12"].detail and "<script>alert(1)" in by_row["12"].detail
    # the contract's schema check on the messages (the items as read, no JSON text) names the cell as JSON
    schema = "messages does not match the contract's schema (blank text or unknown value?): "
    assert (
        schema + """'[{"role": "user", "content": "A bot?"}, {"role": "bot", "content": "Beep."}]'"""
        in by_row["8"].detail
    )


def test_markup_that_runs_is_caught_in_every_spelling_browsers_accept():
    """A handler after a slash (<svg/onload=...>), any case, a javascript: URL in markdown: each one quarantined;
    the same words as text (a "javascript:" inside a word, "onload" without a tag) are not."""
    rows = [
        authored("Say bye.", "Bye! <SVG/OnLoad=alert(1)>", row=1),
        authored("Link it.", "See [here](JavaScript:alert(1)).", row=2),
        authored("Say hi.", "Hi <IMG SRC=x ONERROR = go()>", row=3),
        authored("Name a URL scheme.", "notjavascript: is not one; onload = ready is prose.", row=4),
    ]
    report = run([GOOD, *rows])
    assert {d.origin.row: d.reason for d in report.dropped} == dict.fromkeys(
        ["1", "2", "3"], "expect_column_values_to_not_match_regex:active"
    )
    assert [e.origin.row for e in report.examples] == ["0", "4"]


def test_a_huge_rejected_answer_is_quarantined_as_an_excerpt_with_its_size():
    huge = ex("Too long?", "word " * 600_000, row=1)  # 3,000,000 characters
    report = run([GOOD, huge], max_share=1.0)
    (drop,) = report.dropped
    answer = drop.record["messages"][1]["content"]
    assert drop.reason == "expect_column_values_to_be_between:chars_max"
    assert len(answer) < 2100 and answer.endswith("... [excerpt: 2,000 of 3,000,000 characters]")


def test_metrics_list_every_expectation_with_its_unexpected_count(planted):
    roles = next(e for e in planted.expectations if e["column"] == "roles")
    assert roles == {
        "suite": "examples",
        "expectation": "expect_column_values_to_match_regex",
        "column": "roles",
        "success": False,
        "unexpected": 2,
    }
    assert {e["suite"] for e in planted.expectations} == {"examples", "prompts", "whole_table"}


class _Sink(list):
    write = list.append

    def write_table(self, table) -> None:  # the kept rows of a batch: Examples or Prompts, by their columns
        self.extend(records_of(table, Prompt if "split" in table.column_names else Example))


def test_batches_of_3_rows_give_what_one_batch_gives_with_the_outcomes_merged(planted):
    kept, prompts, dropped, seen = _Sink(), _Sink(), _Sink(), []
    summary = validate_shards(
        (to_table(PLANTED[i : i + 3], Example) for i in range(0, len(PLANTED), 3)),
        PROMPTS,
        kept_examples=kept,
        kept_prompts=prompts,
        dropped=dropped,
        sources=SOURCES,
        min_chars=1,
        max_chars=200,
        max_quarantine_share=1.0,
        progress=lambda suite, batches, rows: seen.append((suite, batches, rows)),
    )
    assert (kept, prompts, dropped) == (planted.examples, planted.prompts, planted.dropped)  # row 5 repeats row 0
    assert summary.expectations == planted.expectations  # success: every batch's; unexpected: their sum
    assert summary.batches == {"examples": 5, "prompts": 1} and seen[-2:] == [("examples", 5, 15), ("prompts", 1, 2)]
    assert summary.read.total() == summary.kept.total() + summary.quarantined == 17


def test_a_declared_source_without_rows_fails_the_table_naming_file_and_fix():
    report = run(examples=[GOOD], sources=SOURCES | {"lost": "data/lost/Posts.xml"})
    assert not report.success
    with pytest.raises(TableCheckError) as err:
        report.raise_for_failures()
    message = str(err.value)
    assert "source 'lost' (data/lost/Posts.xml) has no valid rows" in message
    assert "remove 'lost' from ingest.sources" in message and "source 'wiki' (data/wiki.csv)" in message


def test_too_many_bad_rows_fail_the_table_naming_the_worst_file():
    report = run(max_share=0.1)
    assert len(report.failures) == 1
    assert "9 of 17 rows failed the row checks" in report.failures[0]
    assert "data/se/Posts.xml (8 of 13 rows)" in report.failures[0]
    assert "validate.max_quarantine_share" in report.failures[0]


def test_data_docs_are_written_and_load_nothing_remote(tmp_path):
    run(examples=[GOOD, PLANTED[7]], docs_dir=tmp_path / "docs")
    index = (tmp_path / "docs" / "index.html").read_text(encoding="utf-8")
    pages = list((tmp_path / "docs").rglob("*.html"))
    assert len(pages) == 7  # index + 3 suites + 3 validation results
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert '<script src="http' not in html and '<link rel="stylesheet" href="http' not in html
    assert 'src="static/offline.js"' in index and (tmp_path / "docs/static/offline.js").exists()


def test_make_offline_swaps_cdn_tags_for_local_copies(tmp_path):
    page = tmp_path / "validations" / "v.html"
    page.parent.mkdir()
    page.write_text(
        '<link rel="stylesheet" href="https://cdn.example/b.css"/><script src="https://cdn.example/jq.js"></script>'
        '<script src="https://cdn.example/bt.js"></script><a href="https://greatexpectations.io">GX</a>'
    )
    assert make_offline(tmp_path) == 1
    assert page.read_text() == (
        '<link rel="stylesheet" href="../static/offline.css"><script src="../static/offline.js"></script>'
        '<a href="https://greatexpectations.io">GX</a>'
    )
