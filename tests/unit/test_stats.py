"""Win / tie / loss and grade shares, bootstrap intervals, content seeds and judge reliability on hand-made data."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from lessismore.judge.outcome import pair_outcomes
from lessismore.judge.stats import (
    GRADES,
    bootstrap_ci,
    bootstrap_shares,
    content_seed,
    grade_shares,
    per_baseline,
    reliability,
    summarise,
)
from lessismore.records import Judgment, Rating


def _pair(i: int, v_ab: str, v_ba: str, baseline: str = "base") -> list[Judgment]:
    """Two Judgments for prompt i: candidate "ft" shown as A (ab) then as B (ba)."""
    common = {"prompt_id": f"p{i}", "judge": "j", "template": "t"}
    return [
        Judgment(
            **common,
            order="ab",
            response_a=f"ft{i}",
            response_b=f"{baseline}{i}",
            model_a="ft",
            model_b=baseline,
            verdict=v_ab,
        ),
        Judgment(
            **common,
            order="ba",
            response_a=f"{baseline}{i}",
            response_b=f"ft{i}",
            model_a=baseline,
            model_b="ft",
            verdict=v_ba,
        ),
    ]


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
    assert rel["inconsistent_pairs"] == 2  # (a, a) and (b, b): the orders disagree, counted as ties
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
    assert rel["inconsistent_pairs"] == 0


def test_baselines_are_kept_apart():
    js = _pair(0, "a", "b", "base") + _pair(0, "b", "a", "gpt")
    blocks = per_baseline(pair_outcomes(js, "ft"), ["base", "gpt"])
    assert blocks["base"]["counts"]["win"] == 1 and blocks["gpt"]["counts"]["loss"] == 1


def _ratings(grades: list[str], model: str = "ft") -> list[Rating]:
    return [
        Rating(prompt_id=f"p{i}", response=f"{model}{i}", model=model, judge="j", template="t", grade=g)
        for i, g in enumerate(grades)
    ]


def test_grade_shares_ignore_unreadable_grades_but_count_them():
    block = grade_shares(_ratings(["excellent", "pass", "pass", "fail", "invalid"]))["ft"]
    assert {k: block[k] for k in ("excellent", "pass", "fail", "n", "invalid")} == {
        "excellent": 0.25,
        "pass": 0.5,
        "fail": 0.25,
        "n": 4,
        "invalid": 1,
    }
    assert block["counts"] == {"excellent": 1, "pass": 2, "fail": 1}


def test_grade_shares_have_seeded_intervals_around_the_shares():
    ratings = _ratings(["excellent"] * 12 + ["pass"] * 20 + ["fail"] * 8) + _ratings(["fail"] * 5, "base")
    first, again = grade_shares(ratings, n_resamples=1000, seed=3), grade_shares(ratings, n_resamples=1000, seed=3)
    assert first == again  # same seed: every resample is the same
    assert grade_shares(ratings, n_resamples=1000, seed=4)["ft"]["ci"] != first["ft"]["ci"]
    for g in GRADES:
        lo, hi = first["ft"]["ci"][g]
        assert 0 <= lo < first["ft"][g] < hi <= 1
    # 40 grades, share 0.5 of "pass": the binomial standard error is 0.079, so the 95% interval spans about 0.31
    assert 0.2 < first["ft"]["ci"]["pass"][1] - first["ft"]["ci"]["pass"][0] < 0.4
    assert first["base"]["fail"] == 1.0 and first["base"]["ci"]["fail"] == [1.0, 1.0]


def test_bootstrap_works_for_any_category_set_and_leaves_out_the_rest():
    ci = bootstrap_shares(["x", "y", "y", "junk"], ("x", "y", "z"), n_resamples=500, seed=0)
    assert set(ci) == {"x", "y", "z"} and ci["z"] == [0.0, 0.0]
    assert bootstrap_shares(["junk"], ("x", "y")) == {"x": None, "y": None}
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_shares(["x"], ("x",), n_resamples=0)


def test_content_seeds_separate_baselines_and_reproduce():
    assert content_seed(0, "judge", "base") == content_seed(0, "judge", "base")
    assert len({content_seed(s, j, b) for s in (0, 1) for j in ("j1", "j2") for b in ("base", "gpt")}) == 8
    pairs = pair_outcomes(JUDGMENTS, "ft")
    assert per_baseline(pairs, ["base"], seed=5, judge="j") == per_baseline(pairs, ["base"], seed=5, judge="j")
    assert (
        per_baseline(pairs, ["base"], seed=5, judge="j")["base"]["ci"]
        == summarise([p.outcome for p in pairs], seed=content_seed(5, "j", "base"))["ci"]
    )


def test_a_judge_that_leans_the_same_way_in_both_orders_has_a_soft_win_rate_where_lima_sees_a_tie():
    """Logprobs verdicts that disagree on the letter (a tie under the both-orders rule) but lean to the candidate in
    both orders: the soft preference says so, and the weighted win rate is above one half."""
    leaning = []
    for i in range(6):
        ab, ba = _pair(i, "a", "a")  # the letter A both times: a tie by LIMA's rule
        leaning += [
            replace(ab, raw="A=-0.4000 B=-1.5000 C=-3.0000"),  # candidate shown as A: clearly preferred
            replace(ba, raw="A=-0.6000 B=-0.9000 C=-3.0000"),  # shown as B: nearly even, still leaning
        ]
    pairs = pair_outcomes(leaning, "ft")
    assert {p.outcome for p in pairs} == {"tie"}
    assert all(0.5 < p.preference < 1.0 for p in pairs)
    block = per_baseline(pairs, ["base"], seed=0)["base"]
    assert block["tie"] == 1.0 and block["soft"]["n"] == 6 and block["soft"]["win_rate"] > 0.55
    texts = pair_outcomes(_pair(1, "a", "b") + _pair(2, "tie", "tie") + _pair(3, "b", "invalid"), "ft")
    assert [p.preference for p in texts] == [1.0, 0.5, None]  # text verdicts: 1, 0.5, 0 an order; unreadable: None
    calibrated = replace(leaning[0], meta={"calibrated": "A=-3.0000 B=-0.1000 C=-3.0000"})
    assert pair_outcomes([calibrated, leaning[1]], "ft")[0].preference < 0.5  # the calibrated scores decide


def test_the_judge_summary_carries_a_length_controlled_win_rate():
    """A judge that prefers whichever answer is longer: the candidate, longer on most prompts, wins often raw, and
    about half the time once length is controlled."""
    import numpy as np

    from lessismore.judge.summary import judge_summary

    rng = np.random.default_rng(0)
    judgments, texts = [], {}
    for i in range(60):
        cand, base = int(rng.integers(200, 2000)), int(rng.integers(100, 900))
        texts |= {f"ft{i}": "x" * cand, f"base{i}": "y" * base}
        lean = 1.2 * math.tanh((cand - base) / 500)  # log-odds for the longer answer, in the candidate's favour
        ab, ba = _pair(i, "a", "b")
        judgments += [
            replace(ab, raw=f"A={lean / 2:.4f} B={-lean / 2:.4f} C=-9.0000"),
            replace(ba, raw=f"A={-lean / 2:.4f} B={lean / 2:.4f} C=-9.0000"),
        ]
    kw = {"candidate": "ft", "baselines": ["base"], "n_resamples": 1000, "base_seed": 0, "strong_weight": 3.0}
    summary = judge_summary(judgments, [], [], [], texts=texts, **kw)
    block = summary["baselines"]["base"]
    assert block["soft"]["win_rate"] > 0.6
    lc = block["length_controlled"]
    assert abs(lc["length_controlled_winrate"] - 50) < 5 and lc["weights"]["tanh(std_delta_len)"] < 0
    style = summary["style_control"]  # the same judge, length held apart: ft and base about equal
    assert style["style"]["length"]["coef"] > 0 and abs(style["ratings"]["ft"]["rating"] - 1000) < 60
    assert style["ratings"]["base"] == {"rating": 1000.0, "ci": [1000.0, 1000.0]}
    unknown = judge_summary(judgments, [], [], [], texts={}, **kw)["baselines"]["base"]["length_controlled"]
    assert unknown["length_controlled_winrate"] is None and "no lengths" in unknown["reason"]
