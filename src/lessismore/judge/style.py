"""Bradley-Terry with style control (LMSYS Chatbot Arena's style control, as Arena-Hard applies it): model strengths
with the answers' style held apart, so a judge's taste for long, heavily formatted answers does not pass for
quality.

Sits beside judge/ratings.py (plain Bradley-Terry) and feeds metrics/judge.json ("style_control") and the report.
Each pair is a row: P(x better than y) = sigmoid(theta_x - theta_y + sum_f beta_f * d_f), where d_f is the pair's
style difference in feature f (answer length in characters, markdown headers, list items, bold spans), normalised as
(x - y) / (x + y) (0 when both have none) and then scaled to unit root mean square over the rows (not centred: here
x is always the candidate, so a consistent style advantage must stay in the style term). The target is the pair's
soft preference for x (judge/outcome.py), or its both-orders score where there is none. The fit is a logistic
regression with fractional targets (each row as a win weighted p and a loss weighted 1 - p) and the same weak
Gaussian prior as judge/ratings.py (sd 10 logits: scikit-learn's C = 100), no intercept. Ratings are on the Elo
scale with the anchor at 1000; beta_f is in logits per root mean square of d_f (positive: the judge favours more of
f). Intervals: percentile bootstrap over rows, each resample refitted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lessismore.judge.outcome import PairOutcome
from lessismore.judge.ratings import ANCHOR_RATING, PRIOR_SD, SCALE, SCORES

FEATURES = ("length", "headers", "lists", "bold")
_HEADER = re.compile(r"(?m)^#{1,6}\s+\S")
_LIST = re.compile(r"(?m)^\s*(?:[-*+]|\d+[.)])\s+\S")
_BOLD = re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__")


def style_of(text: str) -> dict[str, int]:
    """The style counts of one answer.

    >>> style_of("# Steps\\n1. Boil **water**.\\n2. Steep.\\n- done")
    {'length': 43, 'headers': 1, 'lists': 3, 'bold': 1}
    """
    return {
        "length": len(text),
        "headers": len(_HEADER.findall(text)),
        "lists": len(_LIST.findall(text)),
        "bold": len(_BOLD.findall(text)),
    }


def style_controlled(
    pairs: Sequence[PairOutcome],
    candidate: str,
    texts: Mapping[str, str],
    anchor: str,
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any]:
    """Style-controlled ratings of the candidate and its baselines, and the style coefficients, with intervals.
    {} when fewer than 10 pairs are readable, or an answer's text is missing."""
    rows = [p for p in pairs if (p.preference is not None or p.outcome in SCORES)]
    if len(rows) < 10 or any(p.candidate_id not in texts or p.baseline_id not in texts for p in rows):
        return {}
    models = sorted({candidate, *(p.baseline for p in rows)})
    if anchor not in models:
        return {}
    free = [m for m in models if m != anchor]
    x = np.zeros((len(rows), len(free) + len(FEATURES)))
    for k, p in enumerate(rows):
        x[k, free.index(candidate)] = 1.0 if candidate != anchor else 0.0
        if p.baseline != anchor:
            x[k, free.index(p.baseline)] = -1.0
        mine, theirs = style_of(texts[p.candidate_id]), style_of(texts[p.baseline_id])
        for f, name in enumerate(FEATURES):
            total = mine[name] + theirs[name]
            x[k, len(free) + f] = (mine[name] - theirs[name]) / total if total else 0.0
    style = x[:, len(free) :]  # scaled, not centred: a candidate always longer than its baseline keeps that
    rms = np.sqrt((style**2).mean(axis=0))  # difference in the style term, where it belongs, not in its theta
    style[:, rms > 0] /= rms[rms > 0]
    y = np.array([p.preference if p.preference is not None else SCORES[p.outcome] for p in rows], dtype=np.float64)
    point = _fit(x, y)
    rng = np.random.default_rng(seed % 2**32)
    draws = np.array([_fit(x[idx], y[idx]) for idx in (rng.integers(0, len(y), len(y)) for _ in range(n_resamples))])
    tails = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    lo, hi = np.percentile(draws, tails, axis=0)

    def rating(w: float) -> float:
        return round(ANCHOR_RATING + SCALE * float(w), 1)

    ratings = {anchor: {"rating": ANCHOR_RATING, "ci": [ANCHOR_RATING, ANCHOR_RATING]}}
    for i, m in enumerate(free):
        ratings[m] = {"rating": rating(point[i]), "ci": [rating(lo[i]), rating(hi[i])]}
    coefs = {
        name: {
            "coef": round(float(point[len(free) + f]), 4),
            "ci": [round(float(lo[len(free) + f]), 4), round(float(hi[len(free) + f]), 4)],
        }
        for f, name in enumerate(FEATURES)
    }
    ordered = dict(sorted(ratings.items(), key=lambda kv: (-kv[1]["rating"], kv[0])))
    return {"n": len(rows), "ratings": ordered, "style": coefs}


def _fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The logistic regression's weights, fractional targets, prior sd PRIOR_SD (C = PRIOR_SD^2), no intercept."""
    from sklearn.linear_model import LogisticRegression

    fit = LogisticRegression(C=PRIOR_SD**2, fit_intercept=False, max_iter=1000)
    fit.fit(np.vstack([x, x]), np.r_[np.ones(len(y)), np.zeros(len(y))], sample_weight=np.r_[y, 1.0 - y])
    return fit.coef_[0]
