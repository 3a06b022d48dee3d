"""curate.neardup: planted near-duplicates dropped and named, distinct texts kept, determinism, edge texts, quality."""

from __future__ import annotations

import random

import pytest

from lessismore.curate.neardup import near_dup_quality, near_duplicates, shingle_hashes
from lessismore.records import Example, Message, Origin

VOCAB = [f"w{i}" for i in range(5000)]
PARAMS = {"threshold": 0.8, "shingle": 5, "num_perm": 128}


def text(seed: int, n: int = 200) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(VOCAB) for _ in range(n))


def edit(body: str, positions: list[int]) -> str:
    """Replace the words at `positions` with new ones: a small edit of the same text."""
    w = body.split()
    for p in positions:
        w[p] = f"changed{p}"
    return " ".join(w)


def ex(body: str, prompt: str = "Explain this.", row: int = 0) -> Example:
    return Example((Message("user", prompt), Message("assistant", body)), Origin("s", "data/s.jsonl", str(row)))


def jaccard(a: Example, b: Example) -> float:
    sa, sb = (set(shingle_hashes(f"{e.prompt}\n{e.response}", 5).tolist()) for e in (a, b))
    return len(sa & sb) / len(sa | sb)


@pytest.fixture
def pool() -> tuple[Example, list[Example], list[Example]]:
    base = ex(text(0), row=0)
    variants = [ex(edit(base.response, [20 + 40 * k]), row=1 + k) for k in range(4)]  # one word each: pairs >= 0.9
    distinct = [ex(text(100 + k), row=10 + k) for k in range(6)]
    half = ex(" ".join(base.response.split()[:100]) + " " + text(99, 100), row=20)  # shares half: Jaccard ~ 1/3
    return base, variants, [*distinct, half]


def test_planted_near_duplicates_are_dropped_and_name_the_kept_example(pool):
    base, variants, others = pool
    assert all(jaccard(base, v) > 0.9 for v in variants)  # what "near" means here, measured exactly
    examples = [base, others[0], *variants, *others[1:]]
    kept, dropped = near_duplicates(examples, **PARAMS)
    assert kept == [base, *others]  # input order
    assert dropped == [(v, f"near_duplicate:{base.id}") for v in variants]


def test_a_few_words_changed_in_a_200_word_text_is_a_near_duplicate():
    base = ex(text(7))
    edited = ex(edit(base.response, [15, 90, 160]))  # 3 of 200 words: 15 of 196 shingles differ, Jaccard ~0.86
    other = ex(text(8))
    assert near_duplicates([base, edited, other], **PARAMS) == ([base, other], [(edited, f"near_duplicate:{base.id}")])


def test_the_first_in_input_order_is_kept(pool):
    base, variants, _ = pool
    kept, dropped = near_duplicates([variants[0], base], **PARAMS)
    assert kept == [variants[0]] and dropped == [(base, f"near_duplicate:{variants[0].id}")]


def test_distinct_and_half_overlapping_texts_are_all_kept(pool):
    _, _, others = pool
    assert jaccard(others[-1], ex(text(0))) < 0.5
    assert near_duplicates(others + [ex(text(0))], **PARAMS) == (others + [ex(text(0))], [])


def test_case_punctuation_and_whitespace_do_not_hide_a_duplicate():
    a = ex(text(1), prompt="How do I fix it?")
    b = ex(text(1).upper().replace(" ", ",\n  "), prompt="how do i FIX it")
    assert near_duplicates([a, b], **PARAMS) == ([a], [(b, f"near_duplicate:{a.id}")])


def test_deterministic_and_independent_of_input_order(pool):
    base, variants, others = pool
    examples = [base, *variants, *others]
    assert near_duplicates(examples, **PARAMS) == near_duplicates(examples, **PARAMS)
    for seed in range(3):
        shuffled = random.Random(seed).sample(examples, len(examples))
        kept, dropped = near_duplicates(shuffled, **PARAMS)
        group = {e.id for e in [base, *variants]}
        assert [e for e in kept if e.id not in group] == [e for e in shuffled if e in others]
        assert len([e for e in kept if e.id in group]) == 1  # exactly one of the planted group survives
        assert {reason.split(":")[1] for _, reason in dropped} <= {e.id for e in kept}


def test_empty_and_one_word_texts_do_not_crash():
    empty = Example((Message("user", ""), Message("assistant", "")), Origin("s", "f", "1"))
    none = Example((), Origin("s", "f", "2"))
    word, word_again, other = ex("yes", prompt=""), ex("Yes!", prompt="  "), ex("no", prompt="")
    kept, dropped = near_duplicates([empty, none, word, word_again, other], **PARAMS)
    assert kept == [empty, word, other]
    assert dropped == [(none, f"near_duplicate:{empty.id}"), (word_again, f"near_duplicate:{word.id}")]
    assert near_duplicates([], **PARAMS) == ([], [])


def test_bad_params_say_which_key():
    with pytest.raises(ValueError, match="near_dup.shingle"):
        near_duplicates([ex("a b c")], threshold=0.8, shingle=0, num_perm=128)
    with pytest.raises(ValueError, match="threshold"):
        near_duplicates([ex("a b c")], threshold=1.5, shingle=5, num_perm=128)


def test_quality_finds_every_planted_pair_against_exact_jaccard(pool):
    base, variants, others = pool
    group = [base, *variants]
    examples = [*group, *others]
    expected = sum(jaccard(a, b) >= 0.8 for i, a in enumerate(group) for b in group[i + 1 :])
    assert expected == len(group) * (len(group) - 1) // 2  # every pair in the group, none outside it
    q = near_dup_quality(examples, **PARAMS, sample=len(examples), seed=0)
    assert q == {
        "sample": len(examples),
        "pairs_exact": expected,
        "pairs_lsh": expected,
        "true_positives": expected,
        "precision": 1.0,
        "recall": 1.0,
    }


def test_quality_on_distinct_texts_has_no_pairs_and_no_ratio(pool):
    _, _, others = pool
    q = near_dup_quality(others, **PARAMS, sample=100, seed=0)
    assert q == {
        "sample": len(others),
        "pairs_exact": 0,
        "pairs_lsh": 0,
        "true_positives": 0,
        "precision": None,
        "recall": None,
    }
    assert near_dup_quality([], **PARAMS, sample=10, seed=0)["sample"] == 0


def test_quality_sample_is_seeded_and_independent_of_input_order(pool):
    base, variants, others = pool
    examples = [base, *variants, *others]
    a = near_dup_quality(examples, **PARAMS, sample=6, seed=3)
    assert a["sample"] == 6
    assert a == near_dup_quality(list(reversed(examples)), **PARAMS, sample=6, seed=3)
