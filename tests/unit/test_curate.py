"""curate: each filter (keep and drop, exact reasons), prompt dedup, seeded quota selection, the whole funnel."""

from __future__ import annotations

import pytest

from lessismore.curate import curate
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
from lessismore.curate.select import sample, select_quotas
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
    [("x" * 9, (False, "response_too_short")), ("x" * 10, (True, "ok")), ("  " + "x" * 20 + "\n", (True, "ok")),
     ("x" * 21, (False, "response_too_long"))],
)  # fmt: skip
def test_response_length_bounds_are_inclusive_and_ignore_outer_whitespace(answer, expected):
    assert response_length(ex(answer), min_chars=10, max_chars=20) == expected


def test_se_score_needs_min_score_on_stack_exchange_only():
    assert se_score(ex(score=10), min_score=10) == (True, "ok")
    assert se_score(ex(score=9), min_score=10) == (False, "low_score")
    assert se_score(ex(), min_score=10) == (False, "low_score")  # no score at all is not a high score
    assert se_score(ex(source="handwritten", score=0), min_score=10) == (True, "ok")


@pytest.mark.parametrize(
    "answer",
    ["I think you should rebase.", "Rebase it; I'm sure that works.", "In my experience, rebase.",
     "This worked for me.", "My advice: rebase.", "It is what I."],
)  # fmt: skip
def test_first_person_answers_are_dropped(answer):
    assert se_first_person(ex(answer)) == (False, "first_person")


@pytest.mark.parametrize(
    "answer",
    [IMPERSONAL, "Disk I/O is the bottleneck here.", "Call `me.save()` after the loop.",
     "```\nfor i in range(3):\n    my_list.append(i)  # I said so\n```", "The mean is lower, i.e. skewed.",
     'Passive voice: "My bike was stolen." names no thief.', "Quoted: “I came, I saw.”"],
)  # fmt: skip
def test_impersonal_answers_and_code_are_kept(answer):
    assert se_first_person(ex(answer)) == (True, "ok")


def test_first_person_rule_applies_to_stack_exchange_only():
    assert se_first_person(ex("I love this recipe.", source="wikihow")) == (True, "ok")


@pytest.mark.parametrize(
    "answer",
    ["As mentioned above, rebase.", "The other answer is wrong: rebase.", "As others have said, rebase.",
     "See https://stackoverflow.com/a/12345 for details.", "Unlike the accepted answer, rebase."],
)  # fmt: skip
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


# ----------------------------------------------------------------------------------------------------------------
# selection


def pool(counts: dict[str, int]) -> list[Example]:
    return [ex(f"answer {s} {i}", prompt=f"{s} {i}?", source=s, row=i) for s, n in counts.items() for i in range(n)]


def test_quotas_cap_their_sources_and_the_others_share_the_rest():
    examples = pool({"se_a": 10, "se_b": 10, "wiki": 10, "hand": 10})
    selected, left_out = select_quotas(examples, budget=12, quotas={"se_a": 3, "se_b": 2}, seed=1)
    per_source = {s: sum(e.origin.source == s for e in selected) for s in ("se_a", "se_b", "wiki", "hand")}
    assert per_source == {"se_a": 3, "se_b": 2, "wiki": 3, "hand": 4}  # 7 left: hand and wiki take turns, hand first
    reasons = {e.origin.source: r for e, r in left_out}
    assert reasons == {"se_a": "over_quota", "se_b": "over_quota", "wiki": "over_budget", "hand": "over_budget"}


def test_selection_is_seeded_deterministic_and_accounts_for_every_candidate():
    examples = pool({"se_a": 20, "wiki": 20})
    first = select_quotas(examples, budget=10, quotas={"se_a": 5}, seed=7)
    again = select_quotas(list(reversed(examples)), budget=10, quotas={"se_a": 5}, seed=7)
    other = select_quotas(examples, budget=10, quotas={"se_a": 5}, seed=8)
    ids = lambda picked: sorted(e.id for e in picked)  # noqa: E731
    assert ids(first[0]) == ids(again[0])  # the seed decides, not the input order
    assert ids(first[0]) != ids(other[0])
    selected, left_out = first
    assert len(selected) == 10
    assert sorted(e.id for e in selected + [e for e, _ in left_out]) == sorted(e.id for e in examples)


def test_quotas_larger_than_the_budget_are_cut_to_the_budget():
    selected, left_out = select_quotas(pool({"se_a": 5, "se_b": 5}), budget=4, quotas={"se_a": 5, "se_b": 5}, seed=0)
    assert len(selected) == 4
    assert [r for _, r in left_out] == ["over_budget"] * 6


def test_random_sample_takes_exactly_the_budget():
    examples = pool({"se_a": 8, "wiki": 8})
    selected, left_out = sample(examples, budget=5, seed=3)
    assert len(selected) == 5 and len(left_out) == 11
    assert {r for _, r in left_out} == {"over_budget"}
    assert [e.id for e in selected] == [e.id for e in sample(examples, budget=5, seed=3)[0]]


# ----------------------------------------------------------------------------------------------------------------
# the funnel


def run(examples, variant="lima", budget=3):
    return curate(examples, variant=variant, budget=budget, quotas={"se": 2}, min_response_chars=10,
                  max_response_chars=200, se_min_score=10, seed=0)  # fmt: skip


def test_curate_funnel_drops_with_reasons_and_loses_nothing():
    examples = [
        ex(score=20, row=1, prompt="p1"),
        ex("I did it like this, works.", score=20, row=2, prompt="p2"),  # first person
        ex(score=20, row=3, prompt="P1 "),  # duplicate prompt of row 1
        ex(score=20, row=4, prompt="p4"),
        ex(score=20, row=5, prompt="p5"),  # over the se quota of 2
        ex("A long handwritten answer.", source="hand", row=6, prompt="p6"),
    ]
    result = run(examples)
    assert [s["n"] for s in result.funnel] == [6, 5, 4, 3]
    assert len(result.selected) == 3 and len(result.selected) + len(result.dropped) == 6
    assert result.dropped_by_reason() == {"duplicate_prompt": 1, "first_person": 1, "over_quota": 1}
    dup = next(d for d in result.dropped if d.reason.startswith("duplicate_prompt"))
    assert dup.reason == f"duplicate_prompt:{examples[0].id}" and dup.stage == "curate"
    assert dup.detail.startswith("data/se.xml row 3: ") and dup.record["id"] == examples[2].id
    assert result.per_source() == {"hand": {"candidates": 1, "selected": 1}, "se": {"candidates": 5, "selected": 2}}


def test_random_variant_skips_filters_and_dedup():
    examples = [ex("I, me, my: tiny.", row=i, prompt="same") for i in range(5)]
    result = run(examples, variant="random", budget=4)
    assert [s["n"] for s in result.funnel] == [5, 5, 5, 4]
    assert [d.reason for d in result.dropped] == ["over_budget"]
