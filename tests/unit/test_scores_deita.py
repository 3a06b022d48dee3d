"""scores/deita.py: DEITA's score-first pass with a distance threshold, under each group's room."""

from __future__ import annotations

import numpy as np
import pytest

from lessismore.scores.deita import BELOW_CUT, NO_ROOM, TAKEN, TOO_CLOSE, UNSCORED, combine, score_first


def unit(rows: list[list[float]]) -> np.ndarray:
    v = np.asarray(rows, dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_best_scores_first_and_a_paraphrase_of_a_taken_row_is_passed_over():
    # rows 0 and 1 point the same way (a paraphrase); 2 and 3 elsewhere
    vectors = unit([[1, 0, 0], [1, 0.05, 0], [0, 1, 0], [0, 0, 1]])
    score = np.array([4.0, 5.0, 3.0, 2.0])
    d = score_first(vectors, score, np.zeros(4, np.int64), np.array([3]), cut=0.0, min_distance=0.1)
    assert d.order.tolist() == [1, 2, 3]  # 1 beats its paraphrase 0, then the rest by score
    assert d.why == [TOO_CLOSE, TAKEN, TAKEN, TAKEN]
    assert d.near[0] == 1 and d.cos[0] == pytest.approx(float(vectors[0] @ vectors[1])) and d.cos[0] > 0.9
    assert np.isnan(d.cos[1:]).all() and (d.near[1:] == -1).all()


def test_without_a_threshold_it_is_a_top_k_by_score_per_group():
    rng = np.random.default_rng(0)
    vectors = unit(rng.normal(size=(40, 8)).tolist())
    score = rng.normal(size=40)
    groups = np.arange(40) % 2
    d = score_first(vectors, score, groups, np.array([3, 5]), cut=-np.inf, min_distance=0.0)
    for g, k in ((0, 3), (1, 5)):
        rows = np.flatnonzero(groups == g)
        best = rows[np.argsort(-score[rows], kind="stable")[:k]]
        assert sorted(int(r) for r in d.order if groups[r] == g) == sorted(best.tolist())
    assert d.why.count(TAKEN) == 8 and d.why.count(NO_ROOM) == 32


def test_cut_and_missing_scores_are_never_taken_and_say_so():
    vectors = unit([[1, 0], [0, 1], [1, 1], [-1, 0]])
    score = np.array([5.0, np.nan, 2.0, 4.5])
    d = score_first(vectors, score, np.zeros(4, np.int64), np.array([4]), cut=3.0, min_distance=0.0)
    assert d.why == [TAKEN, UNSCORED, BELOW_CUT, TAKEN] and d.order.tolist() == [0, 3]


def test_ties_go_to_the_earlier_row_and_the_result_is_deterministic():
    vectors = unit(np.eye(6).tolist())
    score = np.array([1.0, 2.0, 2.0, 2.0, 0.0, 2.0])
    d = score_first(vectors, score, np.zeros(6, np.int64), np.array([2]), cut=0.0, min_distance=0.5)
    assert d.order.tolist() == [1, 2]
    again = score_first(vectors, score, np.zeros(6, np.int64), np.array([2]), cut=0.0, min_distance=0.5)
    assert again.order.tolist() == d.order.tolist() and again.why == d.why


def test_misaligned_inputs_are_refused():
    with pytest.raises(ValueError, match="3 vectors"):
        score_first(unit(np.eye(3).tolist()), np.ones(2), np.zeros(2, np.int64), np.array([1]), cut=0, min_distance=0)


def test_combine_weights_and_names_a_missing_scorer():
    got = combine({"quality": [4.0, 2.0], "complexity": [3.0, None]}, {"quality": 1.0, "complexity": 0.5})
    assert got[0] == 5.5 and np.isnan(got[1])
    with pytest.raises(ValueError, match="no ifd scores"):
        combine({"quality": [1.0]}, {"quality": 1.0, "ifd": 1.0})
