"""`lessismore stats` on AlpacaEval-style annotations the test writes: AlpacaEval's win rate, standard error and
discrete win rate by their definitions, the length-controlled win rate undoing a judge's taste for long answers,
refused rows named by file and row, and the command's exit codes. The alpaca-eval package (0.6.6) installs beside
ours but does not import (it needs pkg_resources, which current setuptools no longer ships), so its definitions are
re-derived here rather than called."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from lessismore.judge.external import read_external
from lessismore.judge.winrate import head_to_head, stats
from tests.conftest import run_env

N = 240  # instructions


def _annotations(model: str, quality: float, length: int, seed: int) -> list[dict]:
    """One model against a 1,000-character baseline, judged by a weighted annotator that likes long answers: the
    preference for the model is sigmoid(quality + difficulty + 1.5 x tanh(length gap / 600)), plus noise."""
    rng = np.random.default_rng(seed)
    difficulty = np.random.default_rng(0).normal(0, 1, N)  # the same instructions for every model
    rows = []
    for i in range(N):
        own = int(length * rng.lognormal(0, 0.6))  # answer lengths vary widely between instructions
        base = int(1000 * rng.lognormal(0, 0.6))
        logit = quality + difficulty[i] + 1.5 * np.tanh((own - base) / 600) + rng.normal(0, 0.3)
        rows.append(
            {
                "instruction": f"Instruction {i}?",
                "output_1": "b" * base,
                "generator_1": "gpt4_turbo",
                "output_2": "m" * own,
                "generator_2": model,
                "preference": 1.0 + 1.0 / (1.0 + np.exp(-logit)),
                "annotator": "weighted_alpaca_eval_gpt4_turbo",
            }
        )
    return rows


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("alpaca")
    spec = {"verbose": (0.0, 2000), "concise": (0.0, 500), "plain": (0.0, 1000), "better": (1.0, 1000)}
    out = []
    for k, (model, (quality, length)) in enumerate(spec.items()):
        path = root / f"{model}.json"
        path.write_text(json.dumps(_annotations(model, quality, length, seed=k + 1)))
        out.append(path)
    return out


def test_head_to_head_follows_alpacaevals_definitions():
    prefs = [1.0, 0.9, 0.5, 0.2, 0.0, None]
    h = head_to_head(prefs)
    valid = np.array([1.0, 0.9, 0.5, 0.2, 0.0])
    assert h["win_rate"] == pytest.approx(valid.mean() * 100)
    assert h["standard_error"] == pytest.approx(valid.std(ddof=1) / np.sqrt(5) * 100)
    assert (h["n_wins"], h["n_wins_base"], h["n_draws"], h["n_total"]) == (2, 2, 1, 5)
    assert h["discrete_win_rate"] == pytest.approx((2 + 0.5) / 5 * 100)


def test_length_control_undoes_the_judges_taste_for_length(files):
    rows, refused = read_external("alpaca_eval", files)
    assert len(rows) == 4 * N and not refused
    result = stats(rows, seed=0)
    verbose, concise, plain = (result[m] for m in ("verbose", "concise", "plain"))
    # the same quality: the raw win rates differ by length alone, the length-controlled ones much less
    assert verbose["win_rate"] - concise["win_rate"] > 20
    raw_gap = verbose["win_rate"] - concise["win_rate"]
    lc_gap = verbose["length_controlled_winrate"] - concise["length_controlled_winrate"]
    assert abs(lc_gap) < raw_gap / 3, (raw_gap, lc_gap)
    assert abs(plain["length_controlled_winrate"] - plain["win_rate"]) < 5  # no length gap: little to control
    better = result["better"]  # a real quality gap survives length control
    assert (
        better["length_controlled_winrate"]
        > max(verbose, concise, plain, key=lambda m: m["length_controlled_winrate"])["length_controlled_winrate"] + 10
    )
    assert verbose["lc_standard_error"] > 0 and verbose["difficulty"].startswith("estimated")
    assert verbose["weights"]["tanh(std_delta_len)"] < 0  # baseline longer -> the model loses


def test_bad_rows_are_refused_with_file_and_row(tmp_path):
    rows = _annotations("m", 0.0, 1000, seed=3)[:12]
    rows[2]["preference"] = 2.7
    rows[5]["preference"] = "B"
    del rows[7]["output_2"]
    rows[9]["preference"] = None  # not annotated: kept, left out of the win rate
    path = tmp_path / "annotations.json"
    path.write_text(json.dumps(rows))
    kept, refused = read_external("alpaca_eval", [path])
    assert [(r.row, r.reason) for r in refused] == [
        (2, "preference_out_of_range"),
        (5, "preference_not_a_number"),
        (7, "missing_field"),
    ]
    assert all(r.detail.startswith(f"{path} row {r.row}: ") for r in refused)
    assert len(kept) == 9 and head_to_head([r.preference for r in kept])["n_total"] == 8


def test_the_command_prints_json_and_refuses_bad_input_with_status_2(files, tmp_path):
    cmd = [sys.executable, "-m", "lessismore.cli", "stats", "--format", "alpaca_eval", *map(str, files), "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=run_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert sorted(out["models"]) == ["better", "concise", "plain", "verbose"] and out["refused"] == 0
    assert out["models"]["verbose"]["baseline"] == "gpt4_turbo"

    broken = tmp_path / "broken.json"
    broken.write_text('{"not": "a list"}')
    for args in (["--format", "mtbench", str(files[0])], ["--format", "alpaca_eval", str(broken)]):
        proc = subprocess.run([*cmd[:3], *args], capture_output=True, text=True, env=run_env(), timeout=120)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert "--format" in proc.stderr or "not a list" in proc.stderr


def _jsonl(path, rows) -> str:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return str(path)


def _conv(answer: str) -> list[dict]:
    return [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": answer}]


def test_mtbench_human_judgments_count_each_game_from_both_sides(tmp_path):
    rows = [
        {
            "question_id": 81,
            "model_a": "gpt-4",
            "model_b": "vicuna",
            "winner": "model_a",
            "judge": "expert_0",
            "turn": 1,
            "conversation_a": _conv("a" * 300),
            "conversation_b": _conv("b" * 100),
        },
        {
            "question_id": 82,
            "model_a": "vicuna",
            "model_b": "gpt-4",
            "winner": "tie",
            "judge": "expert_1",
            "turn": 1,
            "conversation_a": _conv("b" * 120),
            "conversation_b": _conv("a" * 200),
        },
        {"question_id": 83, "model_a": "gpt-4", "model_b": "vicuna", "winner": "model_z", "turn": 1},
        '{"question_id": 84, "model_a": "gpt-4"',  # a torn line
    ]
    kept, refused = read_external("mtbench_human", [_jsonl(tmp_path / "human.jsonl", rows)])
    assert [(r.row, r.reason) for r in refused] == [(2, "unknown_winner"), (3, "not_json")]
    result = stats(kept)
    assert result["gpt-4"]["win_rate"] == 75.0 and result["vicuna"]["win_rate"] == 25.0  # a win and a tie
    assert result["gpt-4"]["baseline"] == "vicuna" and result["gpt-4"]["avg_length"] == 250.0


def test_fastchat_pairwise_judgments_read_two_orders_as_fastchat_does(tmp_path):
    base = {"model_1": "a", "model_2": "b", "judge": ["gpt-4", "pair-v2"], "turn": 1}
    rows = [
        base | {"question_id": 1, "g1_winner": "model_1", "g2_winner": "model_1"},  # both orders: a
        base | {"question_id": 2, "g1_winner": "model_1", "g2_winner": "model_2"},  # they disagree: a tie
        base | {"question_id": 3, "g1_winner": "tie", "g2_winner": "tie"},
        base | {"question_id": 4, "g1_winner": "error", "g2_winner": "model_2"},
    ]
    kept, refused = read_external("mtbench_judge", [_jsonl(tmp_path / "gpt-4_pair.jsonl", rows)])
    assert [(r.row, r.reason) for r in refused] == [(3, "judge_error")]
    a = stats(kept)["a"]
    assert a["win_rate"] == pytest.approx(100 * (1 + 0.5 + 0.5) / 3) and a["n_draws"] == 2
    assert a["length_controlled_winrate"] is None and "no lengths" in a["reason"] and a["avg_length"] is None


def test_labelled_pairs_say_how_often_the_second_output_is_labelled_better(tmp_path):
    rows = [
        {"input": f"Q{i}", "output_1": "x" * 50, "output_2": "y" * 80, "label": 2 if i % 4 else 1} for i in range(12)
    ]
    rows.append({"input": "Q", "output_1": "x", "output_2": "y", "label": 3})
    kept, refused = read_external("pairs", [_jsonl(tmp_path / "llmbar.jsonl", rows)])
    assert [r.reason for r in refused] == ["unknown_label"] and len(kept) == 12
    assert stats(kept)["output_2"]["win_rate"] == 75.0
