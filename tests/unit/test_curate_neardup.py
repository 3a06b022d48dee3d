"""curate.neardup: planted near-duplicates dropped and named, distinct texts kept, determinism, edge texts, quality."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import numpy as np
import pytest
from datasketch import MinHash

from lessismore.curate.decontam import words
from lessismore.curate.neardup import (
    SCHEME,
    SEED,
    group,
    let_go,
    minhash_text,
    minhash_words,
    near_dup_quality,
    near_duplicates,
    shingle_batch,
    shingle_hashes,
    signatures,
    word_signatures,
)
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


def reference_shingles(body: str, n: int) -> list[int]:
    """The shingle hashes as neardup's doc defines them, a word and a window at a time in Python ints."""
    vec = [int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8).digest(), "little") for w in words(body)]
    if not vec:
        return [0]
    n = min(n, len(vec))
    out = []
    for start in range(len(vec) - n + 1):
        h = vec[start]
        for w in vec[start + 1 : start + n]:
            h = (h * 0x9E3779B97F4A7C15 + w) % 2**64
        out.append(h)
    return out


TEXTS = [text(k, n) for k, n in enumerate([200, 40, 5, 4, 1])] + ["", "Ça va? ÇA VA!", "a b a b a b a b", "x y"]


def test_a_batchs_shingles_are_each_texts_own():
    flat, starts = shingle_batch(TEXTS, 5)
    parts = [p.tolist() for p in np.split(flat, starts[1:])]
    assert parts == [reference_shingles(body, 5) for body in TEXTS]
    assert [len(p) for p in parts][2:6] == [1, 1, 1, 1]  # 5 words: one shingle; 4, 1, 0 words: one, rolled whole
    assert shingle_batch([], 5)[0].shape == (0,)


def test_signatures_are_the_bits_of_datasketchs_minhash():
    """The batched signatures against datasketch's own MinHash, a text at a time: every value equal, for long,
    short, one-word, empty and non-ASCII texts and a repeated shingle; a text's signature does not depend on its
    batch."""
    got = signatures(TEXTS, 5, 128)
    for row, body in zip(got, TEXTS, strict=True):
        folded = np.array(reference_shingles(body, 5), dtype=np.uint64)
        want = MinHash(num_perm=128, seed=SEED, hashfunc=int, scheme=SCHEME)
        want.update_batch(((folded >> np.uint64(32)) ^ (folded & np.uint64(0xFFFFFFFF))).tolist())
        assert row.tolist() == want.hashvalues.tolist()
    assert (signatures(TEXTS[2:3], 5, 128) == got[2]).all()
    assert signatures([], 5, 128).shape == (0, 128)


def test_an_examples_minhash_words_from_its_messages_are_those_of_its_minhash_text():
    """curate's prescreen signs from the words decontamination split each message into: the same words, so the same
    signature, as the text prompt + response, whatever the turns, apostrophes or Unicode forms at the seams."""
    origin = Origin("t", "t.jsonl", "1")
    turns = [
        [("user", "Don't PANIC"), ("assistant", "’tis fine: ﬁne. It's 4.2 km!")],
        [("system", "Be brief."), ("user", "Ça va?"), ("assistant", "A"), ("user", "B b"), ("assistant", "e\u0301 C")],
        [("assistant", "no prompt at all")],
        [("user", "no answer yet'")],
        [("user", ""), ("assistant", "")],
    ]
    examples = [Example(tuple(Message(r, c) for r, c in t), origin) for t in turns]
    split = [[words(m.content) for m in ex.messages] for ex in examples]
    mine = [minhash_words(ex, w) for ex, w in zip(examples, split, strict=True)]
    assert mine == [words(minhash_text(ex)) for ex in examples]
    assert mine[1] == ["ça", "va", "é", "c"]  # the first user turn and the last assistant one
    texts = [minhash_text(ex) for ex in examples]
    assert (word_signatures(mine, 5, 128) == signatures(texts, 5, 128)).all()


def test_a_near_copy_of_a_near_copy_joins_the_group_through_the_member_it_matches():
    """16 bands of 8 rows at 0.8. Every row below shares band 0 with A and no other band with anyone (one value of
    each other band differs), so one bucket holds them all and A leads it: B is 113/128 like A; C is 113/128 like
    B but 98/128 like A, so it misses the bucket's first and joins through B; D is like no one. A second bucket
    whose members all miss its first: F and G (113/128 alike), E unlike either."""
    rng = np.random.default_rng(5)

    def fresh(n: int) -> np.ndarray:
        return rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)

    def one_a_band(row: np.ndarray, offset: int) -> np.ndarray:
        out = row.copy()
        out[np.arange(8, 128, 8) + offset] = fresh(15)  # one value of each band but the first
        return out

    a = fresh(128)
    b = one_a_band(a, 0)
    c = one_a_band(b, 1)
    d = np.r_[a[:8], fresh(120)]
    e = fresh(128)
    f = np.r_[e[:8], fresh(120)]
    g = one_a_band(f, 3)
    out = group(np.stack([a, b, c, d, e, f, g]), 0.8)
    assert out.root.tolist() == [0, 0, 0, 3, 4, 5, 5]
    assert out.link.tolist() == [1, 0, 1, -1, -1, 6, 5]
    assert out.similarity.round(4).tolist() == [round(113 / 128, 4)] * 3 + [0.0, 0.0] + [round(113 / 128, 4)] * 2


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


def _rss_file() -> int:
    """This process's resident pages of mapped files, in bytes (Linux)."""
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("RssFile:"))
    return int(line.split()[1]) * 1024


def test_let_go_unmaps_what_a_memory_map_read_and_the_values_stay_readable(tmp_path):
    path = tmp_path / "values.u32"
    np.arange(1 << 24, dtype="<u4").tofile(path)  # 64 MiB: 131,072 rows of 128 values
    values = np.memmap(path, dtype="<u4", mode="r", shape=(1 << 17, 128))
    before = _rss_file()
    assert int(np.asarray(values).sum(dtype=np.uint64)) == (1 << 24) * ((1 << 24) - 1) // 2  # every page read
    read = _rss_file()
    let_go(np.asarray(values)[:, 3:9])  # a view of a view of the map, as the band hashing holds it
    assert read - before > 48 << 20 and _rss_file() - before < 8 << 20
    assert int(values[5, 3]) == 5 * 128 + 3  # mapped again from the page cache on the next read
    let_go(np.arange(10))  # a plain array: nothing to do
