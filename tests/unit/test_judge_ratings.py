"""Bradley-Terry ratings: recovery of simulated strengths, interval coverage, the anchor, ties, all-win data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lessismore.judge.outcome import PairOutcome
from lessismore.judge.ratings import SCALE, bradley_terry, bt_with_ci, outcome_rows

TRUE = {"weak": 1000.0, "mid": 1100.0, "strong": 1300.0}  # Elo scale; "weak" is the anchor


def simulate(seed: int, games_per_pair: int = 200) -> list[tuple[str, str, float]]:
    """600 games (200 per pair of the 3 models), each won with the Bradley-Terry probability of the true ratings."""
    rng = np.random.default_rng(seed)
    rows = []
    for x, y in [("strong", "mid"), ("strong", "weak"), ("mid", "weak")]:
        p_x = 1 / (1 + math.exp(-(TRUE[x] - TRUE[y]) / SCALE))
        rows += [(x, y, float(won)) for won in rng.random(games_per_pair) < p_x]
    return rows


def test_recovers_the_order_and_size_of_known_strengths():
    rows = simulate(seed=0)
    ratings = bradley_terry(rows, anchor="weak")
    assert list(ratings) == ["strong", "mid", "weak"]  # best first
    assert ratings["weak"] == 1000.0
    for m in ("mid", "strong"):  # 200 games per pair: the standard error is about 25-30 points
        assert abs(ratings[m] - TRUE[m]) < 60, ratings


def test_intervals_cover_the_truth_and_the_anchor_is_fixed():
    out = bt_with_ci(simulate(seed=1), anchor="weak", n_resamples=1000, seed=0)
    assert out["weak"] == {"rating": 1000.0, "ci": [1000.0, 1000.0], "games": 400}
    for m in ("mid", "strong"):
        lo, hi = out[m]["ci"]
        assert lo < out[m]["rating"] < hi and lo < TRUE[m] < hi, out
        assert 30 < hi - lo < 200  # about 2 x 1.96 x 25-30 points
    assert out["strong"]["games"] == 400


@pytest.mark.slow
def test_interval_coverage_over_many_simulations():
    covered = {"mid": 0, "strong": 0}
    runs = 25
    for seed in range(runs):
        out = bt_with_ci(simulate(seed=100 + seed), anchor="weak", n_resamples=200, seed=seed)
        for m in covered:
            covered[m] += out[m]["ci"][0] <= TRUE[m] <= out[m]["ci"][1]
    assert all(c >= 0.8 * runs for c in covered.values()), covered  # nominal 95%


def test_same_seed_same_intervals_other_seed_other_intervals():
    rows = simulate(seed=2, games_per_pair=60)
    first = bt_with_ci(rows, "weak", n_resamples=300, seed=11)
    assert bt_with_ci(rows, "weak", n_resamples=300, seed=11) == first
    assert bt_with_ci(rows, "weak", n_resamples=300, seed=12)["strong"]["ci"] != first["strong"]["ci"]


def test_elo_scale_and_ties_count_as_half_a_win():
    ten_to_one = bradley_terry([("ft", "base", 1.0)] * 1000 + [("ft", "base", 0.0)] * 100, "base")
    assert ten_to_one["ft"] == pytest.approx(1400.0, abs=0.5)  # 10:1 odds = 400 points
    # a tie is half a win: 3 wins + 2 ties score like 4 wins + 1 loss, and 2 ties like 1 win + 1 loss
    assert bradley_terry([("a", "b", 1.0)] * 3 + [("a", "b", 0.5)] * 2, "b") == bradley_terry(
        [("a", "b", 1.0)] * 4 + [("a", "b", 0.0)], "b"
    )
    assert bradley_terry([("a", "b", 0.5)] * 2, "b") == {"a": 1000.0, "b": 1000.0}


def test_all_wins_stays_finite_and_ordered():
    rows = [("ft", "base", 1.0)] * 40 + [("ft", "gpt", 1.0)] * 40
    out = bt_with_ci(rows, anchor="base", n_resamples=200, seed=0)
    for block in out.values():
        assert math.isfinite(block["rating"]) and all(math.isfinite(v) for v in block["ci"])
    assert out["ft"]["rating"] > out["gpt"]["rating"] and out["ft"]["rating"] < 5000
    assert out["gpt"]["rating"] == pytest.approx(1000.0, abs=1)  # never compared with base except through ft


def test_rows_from_pair_outcomes_skip_invalid_pairs():
    pairs = [PairOutcome(f"p{i}", "base", o, "a", "b") for i, o in enumerate(["win", "loss", "tie", "invalid"])]
    pairs.append(PairOutcome("p9", "gpt", "win", "a", "b"))
    rows = outcome_rows(pairs, "ft")
    assert rows == [("ft", "base", 1.0), ("ft", "base", 0.0), ("ft", "base", 0.5), ("ft", "gpt", 1.0)]
    assert set(bt_with_ci(rows, "base", n_resamples=50)) == {"ft", "base", "gpt"}


def test_bad_input_is_refused_with_the_fix():
    assert bradley_terry([], "base") == {} and bt_with_ci([], "base") == {}
    with pytest.raises(ValueError, match="anchor model 'gpt' has no valid pairs"):
        bradley_terry([("ft", "base", 1.0)], "gpt")
    with pytest.raises(ValueError, match=r"\['x', 'y'\] were never compared"):
        bradley_terry([("ft", "base", 1.0), ("x", "y", 0.0)], "base")
    with pytest.raises(ValueError, match="score in"):
        bradley_terry([("ft", "base", 2.0)], "base")
    with pytest.raises(ValueError, match="two different models"):
        bradley_terry([("ft", "ft", 1.0)], "ft")
