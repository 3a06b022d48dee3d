"""Agreement between raters: LIMA's tie-discounted accuracy and Cohen's kappa on hand-computed tables."""

from __future__ import annotations

import random

import pytest

from lessismore.judge.agreement import agreement, cohen_kappa, outcome_labels, pairwise_agreement
from lessismore.judge.outcome import PairOutcome

# 10 items; by hand: confusion (rows x, columns y; win, tie, loss) = [[3, 1, 0], [1, 1, 1], [1, 0, 2]]
X = dict(enumerate(["win", "win", "win", "tie", "tie", "loss", "loss", "win", "loss", "tie"], 1))
Y = dict(enumerate(["win", "win", "tie", "tie", "loss", "loss", "win", "win", "loss", "win"], 1))


def test_hand_computed_table():
    a = agreement(X, Y)
    assert a["confusion"] == [[3, 1, 0], [1, 1, 1], [1, 0, 2]]
    assert (a["n"], a["shared"], a["invalid"], a["only_x"], a["only_y"]) == (10, 10, 0, 0, 0)
    # 6 equal items (1.0 each) + 3 where exactly one says tie (items 3, 5, 10: 0.5 each) + 1 win/loss clash (0)
    assert a["tie_discounted"] == pytest.approx(7.5 / 10)
    assert a["exact"] == pytest.approx(0.6)
    # p_o = 6/10; marginals x (4, 3, 3), y (5, 2, 3): p_e = (20 + 6 + 9) / 100 = 0.35; kappa = 0.25 / 0.65
    assert a["kappa"] == pytest.approx(0.25 / 0.65, abs=1e-6) and a["kappa_note"] is None
    assert a["labels"] == ["win", "tie", "loss"]


def test_agreement_is_symmetric_and_the_table_transposes():
    xy, yx = agreement(X, Y), agreement(Y, X)
    assert (xy["tie_discounted"], xy["kappa"]) == (yx["tie_discounted"], yx["kappa"])
    assert yx["confusion"] == [list(col) for col in zip(*xy["confusion"], strict=True)]


def test_invalid_and_unshared_items_are_counted_not_scored():
    x = {**X, 11: "invalid", 12: "win", 13: "missing"}
    y = {**Y, 11: "win", 13: "tie", 14: "loss"}
    a = agreement(x, y)
    assert (a["n"], a["shared"], a["invalid"], a["only_x"], a["only_y"]) == (10, 12, 2, 1, 1)
    assert a["tie_discounted"] == agreement(X, Y)["tie_discounted"]


def test_extremes_and_undefined_kappa():
    assert agreement({1: "win", 2: "loss", 3: "tie"}, {1: "win", 2: "loss", 3: "tie"})["kappa"] == 1.0
    assert agreement({1: "win", 2: "loss"}, {1: "loss", 2: "win"})["kappa"] == -1.0  # p_o 0, p_e 0.5
    same = agreement({1: "tie", 2: "tie"}, {1: "tie", 2: "tie"})
    assert same["kappa"] is None and "expected agreement is 1" in same["kappa_note"]
    assert same["tie_discounted"] == 1.0
    empty = agreement({1: "win"}, {2: "win"})
    assert (empty["n"], empty["tie_discounted"], empty["exact"], empty["kappa"]) == (0, None, None, None)
    assert empty["kappa_note"] == "no shared valid items"


def test_kappa_matches_the_textbook_formula_on_random_tables():
    rng = random.Random(0)
    labels = ["win", "tie", "loss"]
    for _ in range(50):
        n = rng.randint(2, 40)
        x = {i: rng.choice(labels) for i in range(n)}
        y = {i: rng.choice(labels) for i in range(n)}
        p_o = sum(x[i] == y[i] for i in range(n)) / n
        p_e = sum((list(x.values()).count(k) / n) * (list(y.values()).count(k) / n) for k in labels)
        got = agreement(x, y)["kappa"]
        assert got is None if p_e == 1 else got == pytest.approx((p_o - p_e) / (1 - p_e), abs=1e-6)


def test_grades_have_no_tie_so_tie_discounted_is_plain_accuracy():
    grades = ("excellent", "pass", "fail")
    a = agreement({1: "pass", 2: "fail", 3: "pass"}, {1: "pass", 2: "pass", 3: "excellent"}, labels=grades)
    assert a["tie_discounted"] == a["exact"] == pytest.approx(1 / 3)
    # p_o = 1/3; p_e = P(pass)x * P(pass)y = 2/3 * 2/3 = 4/9; kappa = (1/3 - 4/9) / (1 - 4/9) = -0.2
    assert (
        a["kappa"]
        == pytest.approx(-0.2)
        == cohen_kappa(["pass", "fail", "pass"], ["pass", "pass", "excellent"], grades)[0]
    )


def test_every_pair_of_raters_in_order():
    raters = {"gpt4": X, "local": Y, "human": {1: "win", 2: "tie"}}
    out = pairwise_agreement(raters)
    assert list(out) == ["gpt4~local", "gpt4~human", "local~human"]
    assert out["gpt4~local"] == agreement(X, Y)
    assert out["local~human"]["n"] == 2 and out["local~human"]["tie_discounted"] == pytest.approx(0.75)
    assert pairwise_agreement({"only": X}) == {}


def test_pair_outcomes_become_a_rater():
    pairs = [PairOutcome("p1", "base", "win", "a", "b"), PairOutcome("p1", "gpt", "invalid", "a", "missing")]
    assert outcome_labels(pairs) == {("p1", "base"): "win", ("p1", "gpt"): "invalid"}
