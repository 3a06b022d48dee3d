"""curate.decontam: planted test prompts caught through case and punctuation, short prompts, near-misses, details."""

from __future__ import annotations

import random

import pytest

from lessismore.curate.decontam import (
    build_index,
    decontaminate,
    describe_match,
    find_match,
    remove_contaminated,
    words,
)
from lessismore.records import Example, Message, Origin, Prompt

FILLER = " ".join(f"filler{i}" for i in range(120))
P13 = "What are the main differences between a crocodile and an alligator, in simple terms?"  # 14 words
P12 = "Write a short poem about the sea at night for children"  # 12 words
P13_EXACT = "Describe how a rainbow forms after the rain stops falling on the hills"  # 13 words
PARAMS = {"ngram": 13, "min_words": 8, "similarity": 0.8}


def prompt(text: str, row: int = 1, split: str = "test") -> Prompt:
    return Prompt(text, split, Origin("heldout", "data/test.jsonl", str(row)))  # type: ignore[arg-type]


def ex(answer: str, question: str = "Tell me something.", system: str = "") -> Example:
    msgs = ((Message("system", system),) if system else ()) + (Message("user", question), Message("assistant", answer))
    return Example(msgs, Origin("train", "data/train.jsonl", "4"))


def test_planted_prompt_in_an_answer_is_caught_through_case_and_punctuation():
    p = prompt(P13, row=7)
    planted = ex(f"{FILLER} WHAT are the main differences -- between a Crocodile and an alligator in simple {FILLER}")
    clean = ex(FILLER)
    kept, dropped = decontaminate([clean, planted], [p], **PARAMS)
    assert kept == [clean] and dropped == [(planted, f"contaminated:{p.id}")]
    detail = describe_match(planted, build_index([p], **PARAMS))
    assert detail.startswith("assistant message 1, words 120-132 ")
    assert '"what are the main differences between a crocodile and an alligator in simple"' in detail
    assert f"test prompt {p.id} (data/test.jsonl row 7)" in detail
    assert describe_match(clean, build_index([p], **PARAMS)) == ""


def test_any_message_counts_but_a_run_never_spans_two_messages():
    p = prompt(P13)
    in_question = ex("An answer.", question=f"Please: {P13}")
    in_system = ex("An answer.", system=P13.upper())
    split_across = ex("differences between a crocodile and an alligator, in simple terms?", "What are the main")
    kept, dropped = decontaminate([in_question, in_system, split_across], [p], **PARAMS)
    assert kept == [split_across]
    match = find_match(in_system, build_index([p], **PARAMS))
    assert match is not None and (match.message, match.role, match.start) == (0, "system", 0)


def test_a_short_prompt_of_at_least_min_words_is_matched_whole():
    p = prompt(P12)
    planted = ex(f"{FILLER} {P12.lower()}. {FILLER}")
    index = build_index([p], **PARAMS)
    assert index.stats == {
        "prompts": 1,
        "indexed_ngrams": 0,
        "indexed_whole": 1,
        "exact": 0,
        "too_short": 0,
        "entries": 1,
    }
    assert decontaminate([planted], [p], **PARAMS) == ([], [(planted, f"contaminated:{p.id}")])
    partial = ex(f"{FILLER} Write a short poem about the sea at night. {FILLER}")  # 10 of its 12 words
    assert decontaminate([partial], [p], **PARAMS) == ([partial], [])


def test_near_miss_of_12_of_13_words_is_not_caught():
    p = prompt(P13_EXACT)
    assert len(words(P13_EXACT)) == 13
    first_12 = ex(f"{FILLER} Describe how a rainbow forms after the rain stops falling on the. {FILLER}")
    one_changed = ex(f"{FILLER} Describe how a rainbow forms after the snow stops falling on the hills {FILLER}")
    whole = ex(f"{FILLER} describe how a rainbow forms, after the rain stops falling on the hills! {FILLER}")
    kept, dropped = decontaminate([first_12, one_changed, whole], [p], **PARAMS)
    assert kept == [first_12, one_changed] and dropped == [(whole, f"contaminated:{p.id}")]


def test_short_prompts_are_matched_exactly_and_wordless_ones_counted():
    short, empty, ok = prompt("Name three birds.", 1), prompt("?!", 2), prompt(P13, 3)
    index = build_index([short, empty, ok, ok], **PARAMS)  # ok twice: the same id, indexed once
    assert index.too_short == (empty.id,)
    stats = {"prompts": 3, "indexed_ngrams": 1, "indexed_whole": 0, "exact": 1, "too_short": 1, "entries": 2}
    assert index.stats == stats
    mentions = ex("Name three birds. Robin, wren, owl.")  # the words inside a longer question: ordinary text
    answered = ex("Name three birds.", question="What is a classic exercise?")  # an answer saying it: no prompt
    # LIMA's train row 547 repeats test prompt lima-83 word for word; a short prompt repeated is caught the same way
    verbatim = ex("Robin, wren, owl.", question="  NAME three birds!")
    kept, dropped = decontaminate([mentions, verbatim, answered], [short, empty], **PARAMS)
    assert kept == [mentions, answered] and dropped == [(verbatim, f"contaminated:{short.id}")]
    assert "user message 0, words 0-2" in describe_match(verbatim, index) and short.id in describe_match(
        verbatim, index
    )


def test_a_near_copy_of_a_short_prompt_is_caught_by_its_word_set():
    short = prompt("Tell me a joke.", 5)
    index = build_index([short], **PARAMS)
    please = ex("Why did the chicken...", question="Tell me a joke, please!")  # 4 of 5 words: Jaccard 0.8
    reordered = ex("Knock knock.", question="A joke: tell me")  # the same words: 1.0
    other = ex("Sure.", question="Tell me a story about a joke.")  # 4 of 6: 0.67
    longer = ex("No.", question="Tell me a joke " + " ".join(f"word{i}" for i in range(20)))  # too long to be a copy
    kept, dropped = remove_contaminated([please, reordered, other, longer], index)
    assert kept == [other, longer] and [r for _, r in dropped] == [f"contaminated:{short.id}"] * 2
    strict = build_index([short], ngram=13, min_words=8, similarity=1.0)
    assert find_match(please, strict) is None and find_match(reordered, strict) is not None


def test_first_match_in_reading_order_decides():
    a, b = prompt(P13, 1), prompt(P12, 2)
    both = ex(f"{P12} and then {P13}")
    assert decontaminate([both], [a, b], **PARAMS)[1] == [(both, f"contaminated:{b.id}")]
    assert decontaminate([both], [b, a], **PARAMS)[1] == [(both, f"contaminated:{b.id}")]


def test_kept_in_input_order_and_deterministic():
    prompts = [prompt(P13, 1), prompt(P12, 2), prompt(P13_EXACT, 3)]
    rng = random.Random(0)
    pool = [ex(f"{FILLER} {i} {rng.choice([P13, P12, P13_EXACT, 'nothing held out'])}") for i in range(40)]
    kept, dropped = decontaminate(pool, prompts, **PARAMS)
    assert kept == [e for e in pool if e in kept] and len(kept) + len(dropped) == len(pool)
    assert 0 < len(kept) < len(pool)
    assert (kept, dropped) == decontaminate(pool, list(reversed(prompts)), **PARAMS)


def test_empty_and_one_word_texts_do_not_crash():
    pool = [ex(""), ex("word", question=""), Example((), Origin("t", "f", "1"))]
    assert decontaminate(pool, [prompt(P13), prompt("")], **PARAMS) == (pool, [])
    assert decontaminate(pool, [], **PARAMS) == (pool, [])
    assert decontaminate([], [prompt(P13)], **PARAMS) == ([], [])


def test_words_ignore_unicode_forms_and_apostrophes():
    assert words("Ｗｈａｔ’s the café's ＩＤ?") == words("whats the cafés id")
    with pytest.raises(ValueError, match="decontam.ngram"):
        build_index([], ngram=0, min_words=8, similarity=0.8)
