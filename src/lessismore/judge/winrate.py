"""Win rates as AlpacaEval defines them, on any set of preferences: the raw (weighted) win rate and its standard
error, the discrete one, and the length-controlled win rate (AlpacaEval 2, Dubois et al. 2024).

Sits under `lessismore stats` (cli.py), over judge/external.py's rows; numpy and scikit-learn do the arithmetic.
Numbers are percentages, as AlpacaEval's leaderboard prints them.
- `head_to_head`: over the model's preferences p in [0, 1] (1: the model better; a draw 0.5): win_rate = 100 x
  mean(p), standard_error = 100 x the standard error of that mean (sample standard deviation / sqrt(n)); n_wins
  counts p > 0.5, n_wins_base p < 0.5, n_draws p == 0.5; discrete_win_rate rounds each p to a win, a loss or (at
  exactly 0.5) a draw first. Rows without a preference are left out.
- `length_controlled`: AlpacaEval's GLM "length_controlled_v1": a logistic model of p on tanh(delta / std(delta))
  (delta: the baseline's answer length minus the model's, in characters), the instruction's difficulty and a
  constant, no intercept, an L1 penalty whose strength is chosen by 5-fold cross-validation grouped by row
  (continuous targets: each row twice, as a win weighted p and a loss weighted 1 - p); the LC win rate is the mean
  prediction with the length term at zero: "what would the preference be if both answers had the same length?".
  AlpacaEval reads the instructions' difficulty from weights fitted on its whole leaderboard, and regularises
  towards two length-gamed baselines, both downloaded; offline we estimate the difficulty from the files given
  (`instruction_difficulty`: a joint logistic fit over every model sharing the instructions, one term an
  instruction, L2-penalised), and skip the gamed baselines. With one model there is no difficulty to estimate and
  the term is left out. lc_standard_error is ours: the standard deviation of the LC win rate over bootstrap
  resamples of the rows, refitted at the chosen penalty.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lessismore.judge.external import External

CS = np.logspace(-4, 4, 10)  # the penalty grid LogisticRegressionCV searches by default (Cs=10), as AlpacaEval's


def head_to_head(preferences: Sequence[float | None]) -> dict[str, Any]:
    """AlpacaEval's head-to-head numbers over the model's preferences (None left out).

    >>> h = head_to_head([1.0, 0.75, 0.5, 0.0, None])
    >>> h["win_rate"], round(h["standard_error"], 4), h["n_wins"], h["n_draws"], h["n_total"], h["discrete_win_rate"]
    (56.25, 21.3478, 2, 1, 4, 62.5)
    """
    p = np.array([x for x in preferences if x is not None and not np.isnan(x)], dtype=np.float64)
    if not p.size:
        return {"n_total": 0, "win_rate": None, "standard_error": None, "discrete_win_rate": None}
    discrete = np.where(p > 0.5, 1.0, np.where(p < 0.5, 0.0, 0.5))
    return {
        "win_rate": float(p.mean() * 100),
        "standard_error": float(p.std(ddof=1) / np.sqrt(p.size) * 100) if p.size > 1 else None,
        "n_wins": int((p > 0.5).sum()),
        "n_wins_base": int((p < 0.5).sum()),
        "n_draws": int((p == 0.5).sum()),
        "n_total": int(p.size),
        "discrete_win_rate": float(discrete.mean() * 100),
    }


def instruction_difficulty(rows: Sequence[External]) -> dict[str, float]:
    """Each instruction's difficulty for the models, from a joint logistic fit over every model's rows: per model a
    constant and a length term, per instruction one shared term (L2-penalised); the instruction terms, centred,
    are the difficulty (higher: the models beat the baseline more easily there). {} with fewer than two models."""
    from sklearn.linear_model import LogisticRegression

    models = sorted({r.model for r in rows if r.preference is not None})
    if len(models) < 2:
        return {}
    by_model = {m: [r for r in rows if r.model == m] for m in models}
    length = {m: _design(mine, {})[0][:, 0] for m, mine in by_model.items()}  # tanh(std_delta_len), every row
    scored = [
        (r, length[m][k]) for m, mine in by_model.items() for k, r in enumerate(mine) if r.preference is not None
    ]
    instructions = sorted({r.instruction for r, _ in scored})
    col = {ins: i for i, ins in enumerate(instructions)}
    m_col = {m: i for i, m in enumerate(models)}
    x = np.zeros((len(scored), len(instructions) + 2 * len(models)))
    for k, (r, tanh_delta) in enumerate(scored):
        x[k, col[r.instruction]] = 1.0
        x[k, len(instructions) + m_col[r.model]] = 1.0
        x[k, len(instructions) + len(models) + m_col[r.model]] = tanh_delta
    rows = [r for r, _ in scored]
    p = np.array([r.preference for r in rows], dtype=np.float64)
    model = LogisticRegression(C=1.0, fit_intercept=False, max_iter=2000)
    model.fit(*_duplicated(x, p))
    terms = model.coef_[0][: len(instructions)]
    return dict(zip(instructions, (terms - terms.mean()).tolist(), strict=True))


def length_controlled(
    rows: Sequence[External], difficulty: Mapping[str, float], *, seed: int = 0, n_boot: int = 200
) -> dict[str, Any]:
    """One model's length-controlled win rate against its baseline (see the module doc), with the fitted weights,
    the chosen penalty and a bootstrap standard error."""

    if any(r.model_chars is None or r.baseline_chars is None for r in rows):
        return {"length_controlled_winrate": None, "reason": "the format carries no answers: no lengths"}
    x_all, p = _design(rows, difficulty)
    train = ~np.isnan(p)
    if train.sum() < 10 or len(set(p[train].round(6))) < 2:
        return {"length_controlled_winrate": None, "reason": "fewer than 10 annotated rows, or all alike"}
    x, y = x_all[train], p[train]
    seed %= 2**32  # scikit-learn's random_state takes 32 bits; a content seed has 64
    c = _choose_c(x, y, seed)
    fit = _l1(c)
    fit.fit(*_duplicated(x, y))
    test = x_all.copy()
    test[:, 0] = 0.0  # both answers the same length
    lc = float(fit.predict_proba(test)[:, 1].mean() * 100)
    rng, boots = np.random.default_rng(seed), []
    for _ in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        if len(set(y[idx].round(6))) < 2:
            continue
        again = _l1(c)
        again.fit(*_duplicated(x[idx], y[idx]))
        at_zero = test[idx]
        boots.append(again.predict_proba(at_zero)[:, 1].mean() * 100)
    names = ["tanh(std_delta_len)", "instruction_difficulty", "constant"]
    return {
        "length_controlled_winrate": lc,
        "lc_standard_error": float(np.std(boots, ddof=1)) if len(boots) > 1 else None,
        "weights": dict(zip(names, fit.coef_[0].tolist(), strict=True)),
        "C": float(c),
        "difficulty": "estimated from the files given" if difficulty else "none (one model: not identifiable)",
    }


def stats(rows: Sequence[External], *, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Per model (against its baseline): head_to_head, then length_controlled with the jointly estimated
    instruction difficulty; also the mean answer lengths."""
    difficulty = instruction_difficulty(rows)
    out = {}
    for model in sorted({r.model for r in rows}):
        mine = [r for r in rows if r.model == model]
        baselines = sorted({r.baseline for r in mine})
        out[model] = {
            "baseline": baselines[0] if len(baselines) == 1 else baselines,
            "n": len(mine),
            **head_to_head([r.preference for r in mine]),
            **length_controlled(mine, difficulty, seed=seed),
            "avg_length": _mean_length(mine),
        }
    return out


def _design(rows: Sequence[External], difficulty: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """(X: tanh(std_delta_len), instruction difficulty, 1; p with nan where there is no preference)."""
    deltas = np.array([(r.baseline_chars or 0) - (r.model_chars or 0) for r in rows], dtype=np.float64)  # unknown: 0
    std = deltas.std(ddof=1) if len(deltas) > 1 else 1.0
    x = np.column_stack(
        [
            np.tanh(deltas / (std if std > 0 else 1.0)),
            np.array([difficulty.get(r.instruction, 0.0) for r in rows], dtype=np.float64),
            np.ones(len(rows)),
        ]
    )
    p = np.array([np.nan if r.preference is None else r.preference for r in rows], dtype=np.float64)
    return x, p


def _duplicated(x: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A logistic fit on probabilities: each row as a win weighted p and as a loss weighted 1 - p."""
    return np.vstack([x, x]), np.r_[np.ones(len(p)), np.zeros(len(p))], np.r_[p, 1.0 - p]


def _choose_c(x: np.ndarray, p: np.ndarray, seed: int) -> float:
    """The penalty of CS with the lowest held-out log loss over 5 folds of rows (both copies of a row together)."""
    from sklearn.model_selection import KFold

    folds = list(KFold(n_splits=min(5, len(p)), shuffle=True, random_state=seed).split(x))
    losses = []
    for c in CS:
        total = 0.0
        for tr, te in folds:
            fit = _l1(c)
            fit.fit(*_duplicated(x[tr], p[tr]))
            q = np.clip(fit.predict_proba(x[te])[:, 1], 1e-15, 1 - 1e-15)
            total += float(-(p[te] * np.log(q) + (1 - p[te]) * np.log(1 - q)).sum())
        losses.append(total)
    return float(CS[int(np.argmin(losses))])


def _mean_length(rows: Sequence[External]) -> float | None:
    known = [r.model_chars for r in rows if r.model_chars is not None]
    return float(np.mean(known)) if known else None


def _l1(c: float) -> Any:
    """AlpacaEval's GLM: an L1-penalised logistic regression, liblinear, no intercept, its fixed random state."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, l1_ratio=1.0, solver="liblinear", fit_intercept=False, random_state=123)
