"""curate: each filter (keep and drop, exact reasons), prompt dedup, the funnel (selection: test_curate_select)."""

from __future__ import annotations

import pytest

from lessismore.curate.dedup import dedup_prompts
from lessismore.curate.filters import (
    REASONS,
    apply_filters,
    lima_checks,
    response_length,
    se_first_person,
    se_other_answers,
    se_score,
)
from lessismore.records import Example, Message, Origin

IMPERSONAL = "Use `git rebase -i` to squash the commits, then force-push the branch."


def ex(answer: str = IMPERSONAL, *, prompt: str = "How?", source: str = "se", row: int = 1, **meta) -> Example:
    fmt = "stackexchange_xml" if source.startswith("se") else "lima_jsonl"
    return Example(
        messages=(Message("user", prompt), Message("assistant", answer)),
        origin=Origin(source, f"data/{source}.xml", str(row)),
        meta={"format": fmt, "split": "train", **meta},
    )


# ----------------------------------------------------------------------------------------------------------------
# filters


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("x" * 9, (False, "response_too_short")),
        ("x" * 10, (True, "ok")),
        ("  " + "x" * 20 + "\n", (True, "ok")),
        ("x" * 21, (False, "response_too_long")),
    ],
)
def test_response_length_bounds_are_inclusive_and_ignore_outer_whitespace(answer, expected):
    assert response_length(ex(answer), min_chars=10, max_chars=20) == expected


def test_se_score_needs_min_score_on_stack_exchange_only():
    assert se_score(ex(score=10), min_score=10) == (True, "ok")
    assert se_score(ex(score=9), min_score=10) == (False, "low_score")
    assert se_score(ex(), min_score=10) == (False, "low_score")  # no score at all is not a high score
    assert se_score(ex(source="handwritten", score=0), min_score=10) == (True, "ok")


@pytest.mark.parametrize(
    "answer",
    [
        "I think you should rebase.",
        "Rebase it; I'm sure that works.",
        "In my experience, rebase.",
        "This worked for me.",
        "My advice: rebase.",
        "It is what I.",
        "After Type I errors, I retested.",
    ],
)
def test_first_person_answers_are_dropped(answer):
    assert se_first_person(ex(answer)) == (False, "first_person")


@pytest.mark.parametrize(
    "answer",
    [
        IMPERSONAL,
        "Disk I/O is the bottleneck here.",
        "Call `me.save()` after the loop.",
        "```\nfor i in range(3):\n    my_list.append(i)  # I said so\n```",
        "The mean is lower, i.e. skewed.",
        'Passive voice: "My bike was stolen." names no thief.',
        "Quoted: “I came, I saw.”",
        "A Type I error rejects a true null; Phase I trials test safety; World War I ended in 1918.",
    ],
)
def test_impersonal_answers_and_code_are_kept(answer):
    assert se_first_person(ex(answer)) == (True, "ok")


def test_first_person_rule_applies_to_stack_exchange_only():
    assert se_first_person(ex("I love this recipe.", source="wikihow")) == (True, "ok")


@pytest.mark.parametrize(
    "answer",
    [
        "As mentioned above, rebase.",
        "The other answer is wrong: rebase.",
        "As others have said, rebase.",
        "See https://stackoverflow.com/a/12345 for details.",
        "Unlike the accepted answer, rebase.",
    ],
)
def test_answers_referring_to_other_answers_are_dropped(answer):
    assert se_other_answers(ex(answer)) == (False, "refers_to_other_answers")


def test_answers_without_references_are_kept():
    assert se_other_answers(ex("Answer the form above, then submit it.")) == (True, "ok")
    assert se_other_answers(ex("As mentioned above, rebase.", source="handwritten")) == (True, "ok")


def test_apply_filters_stops_at_the_first_failing_check():
    calls = []

    def check(name, keep):
        return lambda e: calls.append(name) or (keep, name)

    checks = [check("a", True), check("b", False), check("c", False)]
    assert apply_filters(ex(), checks) == (False, "b")
    assert calls == ["a", "b"]
    assert apply_filters(ex(), checks[:1]) == (True, "ok")


def test_lima_checks_bind_params_and_every_reason_is_explained():
    checks = lima_checks(min_response_chars=5, max_response_chars=100, se_min_score=10)
    assert apply_filters(ex("I think so, yes.", score=50), checks) == (False, "first_person")
    assert apply_filters(ex("As the other answer says, I agree.", score=50), checks) == (
        False,
        "refers_to_other_answers",
    )
    assert apply_filters(ex("tiny", score=50), checks) == (False, "response_too_short")
    assert apply_filters(ex(score=3), checks) == (False, "low_score")
    assert apply_filters(ex(score=10), checks) == (True, "ok")
    assert {"response_too_short", "response_too_long", "low_score", "first_person"} <= set(REASONS)


# ----------------------------------------------------------------------------------------------------------------
# dedup


def test_dedup_keeps_the_first_prompt_and_names_it():
    a = ex("one", prompt="What is  DVC?", row=1)
    b = ex("two", prompt="what is DVC?", row=2)  # same prompt after casefold + whitespace
    c = ex("three", prompt="What is Prefect?", row=3)
    kept, dropped = dedup_prompts([a, b, c])
    assert kept == [a, c]
    assert dropped == [(b, f"duplicate_prompt:{a.id}")]
