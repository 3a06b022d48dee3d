"""Win / tie / loss shares, bootstrap intervals and judge reliability on hand-made verdicts."""

from __future__ import annotations

import pytest

from lessismore.judge.protocol import pair_outcomes
from lessismore.judge.stats import bootstrap_ci, grade_shares, per_baseline, reliability, summarise
from lessismore.records import Judgment, Rating


def _pair(i: int, v_ab: str, v_ba: str, baseline: str = "base") -> list[Judgment]:
    """Two Judgments for prompt i: candidate "ft" shown as A (ab) then as B (ba)."""
    common = {"prompt_id": f"p{i}", "judge": "j", "template": "t"}
    return [
        Judgment(**common, order="ab", response_a=f"ft{i}", response_b=f"{baseline}{i}", model_a="ft",
                 model_b=baseline, verdict=v_ab),
        Judgment(**common, order="ba", response_a=f"{baseline}{i}", response_b=f"ft{i}", model_a=baseline,
                 model_b="ft", verdict=v_ba),
    ]  # fmt: skip


# 10 pairs: 4 wins, 2 losses, 3 ties (one true tie, two disagreements), 1 invalid
VERDICT_PAIRS = [("a", "b")] * 4 + [("b", "a")] * 2 + [("tie", "tie"), ("a", "a"), ("b", "b")] + [("a", "invalid")]
JUDGMENTS = [j for i, (ab, ba) in enumerate(VERDICT_PAIRS) for j in _pair(i, ab, ba)]


def test_counts_and_shares_are_exact():
    outcomes = pair_outcomes(JUDGMENTS, "ft")
    block = per_baseline(outcomes, ["base"], seed=0)["base"]
    assert block["counts"] == {"win": 4, "tie": 3, "loss": 2}
    assert (block["n"], block["invalid"]) == (9, 1)
    assert (block["win"], block["tie"], block["loss"]) == pytest.approx((4 / 9, 3 / 9, 2 / 9))


def test_ci_contains_the_point_estimate_and_is_seeded():
    outcomes = [o.outcome for o in pair_outcomes(JUDGMENTS, "ft")]
    block = summarise(outcomes, n_resamples=1000, seed=7)
    for k in ("win", "tie", "loss"):
        lo, hi = block["ci"][k]
        assert 0 <= lo <= block[k] <= hi <= 1 and lo < hi
    assert bootstrap_ci(outcomes, seed=7) == block["ci"]
    assert bootstrap_ci(outcomes, seed=8) != block["ci"]


def test_no_valid_pairs_gives_none_not_zero():
    block = summarise(["invalid", "invalid"])
    assert (block["n"], block["win"], block["ci"]["win"], block["invalid"]) == (0, None, None, 2)


def test_reliability_on_hand_made_verdicts():
    lengths = {f"ft{i}": 100 for i in range(10)} | {f"base{i}": 50 for i in range(10)}
    lengths["base0"] = 100  # pair 0 (a win) has equal lengths: it does not count for length bias
    outcomes = pair_outcomes(JUDGMENTS, "ft", lengths)
    rel = reliability(outcomes, JUDGMENTS)
    # agreeing orders: 4 wins + 2 losses + the (tie, tie) pair = 7 of 9 valid pairs
    assert rel["position_consistency"] == pytest.approx(7 / 9)
    # decisive single verdicts, counted by hand from VERDICT_PAIRS
    a_votes = 4 + 2 + 2 + 1  # ab of wins, ba of losses, (a, a) twice, ab of the invalid pair
    b_votes = 4 + 2 + 2  # ba of wins, ab of losses, (b, b) twice
    assert rel["first_position_preference"] == pytest.approx(a_votes / (a_votes + b_votes))
    assert rel["invalid_rate"] == pytest.approx(1 / 20)
    # decisive pairs with different lengths: 3 wins (candidate longer) + 2 losses (candidate longer) -> 3 of 5
    assert rel["length_bias"] == pytest.approx(3 / 5) and rel["decisive_pairs"] == 5
    assert rel["option_mass"] is None


def test_reliability_of_nothing_is_undefined():
    rel = reliability([], [])
    assert rel["position_consistency"] is None and rel["invalid_rate"] is None and rel["valid_pairs"] == 0


def test_baselines_are_kept_apart():
    js = _pair(0, "a", "b", "base") + _pair(0, "b", "a", "gpt")
    blocks = per_baseline(pair_outcomes(js, "ft"), ["base", "gpt"])
    assert blocks["base"]["counts"]["win"] == 1 and blocks["gpt"]["counts"]["loss"] == 1


def test_grade_shares_ignore_unreadable_grades_but_count_them():
    grades = ["excellent", "pass", "pass", "fail", "invalid"]
    ratings = [Rating(prompt_id=f"p{i}", response=f"r{i}", model="ft", judge="j", template="t", grade=g)
               for i, g in enumerate(grades)]  # fmt: skip
    assert grade_shares(ratings) == {"ft": {"excellent": 0.25, "pass": 0.5, "fail": 0.25, "n": 4, "invalid": 1}}
