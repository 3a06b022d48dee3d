"""generate/baselines.py: each published format imported, matched by id or text, nothing dropped silently.

Every format's fixture answers two of our three test prompts, plus one prompt that is not in our test set; so each
import must give 2 Responses, list the third test prompt as unmatched and count one extra answer.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from lessismore import records
from lessismore.generate.baselines import import_baseline

ORIGIN = records.Origin(source="test_prompts", file="data/sources/prompts/test.jsonl", row="0")
PROMPTS = [
    records.Prompt(text="How do I boil an egg?", split="test", origin=ORIGIN, meta={"id": "test-001"}),
    records.Prompt(text="Write a haiku about  rain.", split="test", origin=ORIGIN, meta={"id": "test-002"}),
    records.Prompt(text="Explain recursion.", split="test", origin=ORIGIN, meta={"id": "test-003"}),
]
EXTRA = "What is the capital of France?"


def _json(path, rows) -> str:
    path.write_text(json.dumps(rows), encoding="utf-8")
    return str(path)


def _jsonl(path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def alpaca_eval(tmp_path) -> str:
    rows = [
        {"instruction": "how do I boil an EGG?", "output": "Boil water.", "generator": "gpt4", "dataset": "x"},
        {"instruction": "Write a haiku about rain.\n", "output": "Drops fall.", "generator": "gpt4"},
        {"instruction": EXTRA, "output": "Paris.", "generator": "gpt4"},
    ]
    return _json(tmp_path / "model_outputs.json", rows)


def just_eval(tmp_path) -> str:
    rows = [
        {
            "id": 0,
            "instruction": "How do I boil an egg?",
            "source_id": "alpaca_eval-0",
            "output": "Boil water.",
            "generator": "Llama-2-7b-chat-hf",
            "datasplit": "just_eval",
        },
        {
            "id": 1,
            "instruction": "Write a haiku about rain.",
            "source_id": "lima-7",
            "output": ["Drops fall.", "x"],
            "generator": "Llama-2-7b-chat-hf",
            "datasplit": "just_eval",
        },
        {"id": 2, "instruction": EXTRA, "source_id": "mt-3", "output": "Paris.", "generator": "Llama-2-7b-chat-hf"},
    ]
    return _json(tmp_path / "llama.to_eval.json", rows)


def mt_bench(tmp_path) -> str:
    def answer(qid, *turns):
        return {
            "question_id": qid,
            "answer_id": f"a{qid}",
            "model_id": "vicuna-13b",
            "choices": [{"index": 0, "turns": list(turns)}],
            "tstamp": 1.0,
        }

    rows = [
        answer("test-001", "Boil water.", "a second turn"),
        answer("test-002", "Drops fall."),
        answer(81, "Paris."),
    ]
    (tmp_path / "model_answer").mkdir()
    return _jsonl(tmp_path / "model_answer" / "vicuna-13b.jsonl", rows)


def plain_jsonl(tmp_path) -> str:
    rows = [
        {"prompt_id": PROMPTS[0].id, "response": "Boil water.", "decoding": {"temperature": 0.7}},
        {"prompt": "write a haiku about rain.", "output": "Drops fall."},
        {"prompt": EXTRA, "response": "Paris."},
    ]
    return _jsonl(tmp_path / "answers.jsonl", rows)


FIXTURES = {"alpaca_eval": alpaca_eval, "just_eval": just_eval, "mt_bench": mt_bench, "jsonl": plain_jsonl}


@pytest.mark.parametrize("fmt", list(FIXTURES))
def test_each_format_is_matched_with_its_unmatched_prompt_listed_and_extra_answer_counted(tmp_path, fmt):
    path = FIXTURES[fmt](tmp_path)
    imp = import_baseline("published", fmt, path, PROMPTS)
    assert [r.prompt_id for r in imp.responses] == [PROMPTS[0].id, PROMPTS[1].id]
    assert [r.text for r in imp.responses] == ["Boil water.", "Drops fall."]  # MT-Bench: the first turn
    assert imp.unmatched == [PROMPTS[2]] and imp.extra == 1 and imp.duplicates == 0 and imp.dropped == []
    sha = hashlib.sha256(open(path, "rb").read()).hexdigest()[:16]
    assert {r.model for r in imp.responses} == {"published"} and {r.checkpoint for r in imp.responses} == {sha}
    assert all(r.meta["file"] == path and r.meta["matched_by"] in ("id", "text") for r in imp.responses)
    assert imp.responses[0].id == records.content_id("published", sha, PROMPTS[0].id, imp.responses[0].decoding)


def test_ids_win_over_text_and_the_file_decoding_is_kept(tmp_path):
    imp = import_baseline("published", "jsonl", plain_jsonl(tmp_path), PROMPTS)
    assert [r.meta["matched_by"] for r in imp.responses] == ["id", "text"]
    assert imp.responses[0].decoding == {"temperature": 0.7} and imp.responses[1].decoding == {}
    mt = import_baseline("vicuna", "mt_bench", mt_bench(tmp_path), PROMPTS)
    assert mt.responses[0].meta == {
        "generator": "vicuna-13b",
        "turns": 2,
        "matched_by": "id",
        "file": mt.responses[0].meta["file"],
        "row": "1",
    }


def test_two_files_with_the_same_texts_pair_by_their_own_ids_and_ambiguous_rows_are_said(tmp_path):
    # LIMA's test prompt lima-16 and an AlpacaEval prompt with the very same words, both in our eval set
    same = "Given a <span> in HTML I want to change its color on mouse over."
    lima = records.Origin("lima_test", "data/lima/test.jsonl", "16")
    ours = [
        records.Prompt(text=same, split="test", origin=lima, meta={"id": "lima-16"}),
        records.Prompt(text="How do I boil an egg?", split="test", origin=lima, meta={"id": "lima-17"}),
    ]
    rows = [
        {"id": 0, "instruction": "How do I boil an egg?", "source_id": "lima-17", "output": "Boil water."},
        {"id": 1, "instruction": same, "source_id": "alpaca_eval-5", "output": "Use :hover."},  # another question
    ]
    imp = import_baseline("gpt-4", "just_eval", _json(tmp_path / "gpt4.to_eval.json", rows), ours)
    assert [(r.prompt_id, r.meta["matched_by"]) for r in imp.responses] == [(ours[1].id, "id")]
    assert imp.ambiguous == [
        "row 1: its text is prompt lima-16's, but its ids ['1', 'alpaca_eval-5'] name another question"
    ]
    assert imp.unmatched == [ours[0]]  # said, not silently paired with the AlpacaEval row


def test_rows_without_an_answer_become_dropped_records_and_second_answers_are_counted(tmp_path):
    path = tmp_path / "answers.jsonl"
    path.write_text(
        json.dumps({"prompt": "How do I boil an egg?", "response": "Boil water."})
        + "\n"
        + json.dumps({"prompt": "How do I boil an egg?", "response": "Again."})
        + "\n"
        + json.dumps({"prompt": "Explain recursion.", "response": "   "})
        + "\n"
        + "{not json\n",
        encoding="utf-8",
    )
    imp = import_baseline("mine", "jsonl", path, PROMPTS)
    assert [r.text for r in imp.responses] == ["Boil water."] and imp.duplicates == 1
    assert [(d.reason, d.origin.row) for d in imp.dropped] == [("no_answer_text", "3"), ("malformed_json", "4")]
    assert all(str(path) in d.detail and d.stage == "import" for d in imp.dropped)
    assert len(imp.unmatched) == 2


def test_a_changed_file_is_a_different_baseline(tmp_path):
    path = alpaca_eval(tmp_path)
    first = import_baseline("gpt4", "alpaca_eval", path, PROMPTS).responses[0]
    rows = json.loads(open(path).read())
    rows[0]["output"] = "Boil water for 9 minutes."
    _json(tmp_path / "model_outputs.json", rows)
    second = import_baseline("gpt4", "alpaca_eval", path, PROMPTS).responses[0]
    assert first.prompt_id == second.prompt_id and first.checkpoint != second.checkpoint and first.id != second.id


def test_a_missing_or_malformed_file_names_the_baseline_and_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="'gpt4'.*fix its path"):
        import_baseline("gpt4", "alpaca_eval", tmp_path / "nope.json", PROMPTS)
    (tmp_path / "bad.json").write_text('{"instruction": "not a list"}')
    with pytest.raises(ValueError, match="not a list"):
        import_baseline("gpt4", "alpaca_eval", tmp_path / "bad.json", PROMPTS)
