"""Numbers from verdicts: win / tie / loss and excellent / pass / fail shares with bootstrap intervals, and how
reliable the judge was.

Sits after judge/outcome.py (PairOutcome) and judge/protocol.py (Judgment, Rating) and feeds metrics/judge.json and
report/. Shares are over valid labels only; invalid ones are counted next to them, never folded in. Undefined
shares (nothing to divide by) are None, so the report can say "n/a" instead of a misleading 0%. Every bootstrap
seed derives from content (`content_seed`), so a re-run reproduces every resample. Bradley-Terry ratings live in
judge/ratings.py, agreement between judges in judge/agreement.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from lessismore.judge.agreement import tie_discounted_agreement
from lessismore.judge.outcome import PairOutcome, candidate_view
from lessismore.records import Judgment, Rating, content_id

SHARES = ("win", "tie", "loss")
GRADES = ("excellent", "pass", "fail")
__all__ = [
    "GRADES",
    "SHARES",
    "bootstrap_ci",
    "bootstrap_shares",
    "content_seed",
    "grade_shares",
    "per_baseline",
    "reliability",
    "share_block",
    "soft_win_rate",
    "summarise",
    "tie_discounted_agreement",
]


def _share(num: int, den: int) -> float | None:
    return num / den if den else None


def content_seed(base_seed: int, *parts: str) -> int:
    """A bootstrap seed derived from content (params base.seed, then e.g. judge and baseline names).

    A re-run draws exactly the same resamples, and two baselines (or judges, or models) never share a stream.

    >>> content_seed(0, "judge", "gpt") == content_seed(0, "judge", "gpt") != content_seed(0, "judge", "base")
    True
    """
    return int(content_id("bootstrap", base_seed, *parts), 16)  # 64 bits: numpy's default_rng takes any int >= 0


def bootstrap_shares(
    labels: Sequence[str], categories: Sequence[str], n_resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> dict[str, list[float] | None]:
    """Percentile bootstrap interval of each category's share, resampling the valid labels with replacement (seeded).

    Labels outside `categories` ("invalid") are left out before resampling. Works for win / tie / loss and for
    excellent / pass / fail alike. Nothing valid: every interval is None.

    >>> ci = bootstrap_shares(["pass"] * 6 + ["fail"] * 4 + ["invalid"], GRADES, seed=1)
    >>> ci["pass"][0] < 0.6 < ci["pass"][1], ci["excellent"]
    (True, [0.0, 0.0])
    """
    import numpy as np

    if n_resamples < 1 or not 0 < level < 1:
        raise ValueError(f"bootstrap needs n_resamples >= 1 and 0 < level < 1, got {n_resamples} and {level}")
    valid = np.array([categories.index(x) for x in labels if x in categories], dtype=np.int64)
    if valid.size == 0:
        return dict.fromkeys(categories)
    rng = np.random.default_rng(seed)
    samples = valid[rng.integers(0, valid.size, size=(n_resamples, valid.size))]
    tails = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]  # percentiles, e.g. 2.5 and 97.5
    out = {}
    for code, name in enumerate(categories):
        lo, hi = np.percentile((samples == code).mean(axis=1), tails)
        out[name] = [round(float(lo), 6), round(float(hi), 6)]
    return out


def bootstrap_ci(
    outcomes: Sequence[str], n_resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> dict[str, list[float] | None]:
    """`bootstrap_shares` over win / tie / loss.

    >>> ci = bootstrap_ci(["win"] * 6 + ["loss"] * 4, seed=1)
    >>> ci["win"][0] < 0.6 < ci["win"][1], ci["tie"]
    (True, [0.0, 0.0])
    """
    return bootstrap_shares(outcomes, SHARES, n_resamples, seed, level)


def share_block(
    labels: Sequence[str], categories: Sequence[str], n_resamples: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """n valid labels, each category's share (None when n is 0), the invalid count, CIs and raw counts.

    >>> b = share_block(["pass", "fail", "fail", "invalid"], GRADES)
    >>> b["n"], b["fail"], b["excellent"], b["invalid"], b["counts"]
    (3, 0.6666666666666666, 0.0, 1, {'excellent': 0, 'pass': 1, 'fail': 2})
    """
    counts = Counter(labels)
    n = sum(counts[k] for k in categories)
    block: dict[str, Any] = {"n": n}
    block.update({k: _share(counts[k], n) for k in categories})
    block["invalid"] = len(labels) - n
    block["ci"] = bootstrap_shares(labels, categories, n_resamples, seed)
    block["counts"] = {k: counts[k] for k in categories}
    return block


def summarise(outcomes: Sequence[str], n_resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """One baseline's block of metrics/judge.json: n valid pairs, shares, invalid count, CIs and raw counts.

    >>> s = summarise(["win", "win", "tie", "loss", "invalid"])
    >>> s["n"], s["win"], s["invalid"], s["counts"]
    (4, 0.5, 1, {'win': 2, 'tie': 1, 'loss': 1})
    """
    return share_block(outcomes, SHARES, n_resamples, seed)


def soft_win_rate(
    preferences: Sequence[float | None],
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    weights: Sequence[float] | None = None,
) -> dict[str, Any]:
    """The weighted win rate: the mean soft preference for the candidate (judge/outcome.py, ties half), its
    standard error (AlpacaEval's: the sample standard deviation over sqrt(n)) and a percentile bootstrap interval
    resampling the pairs; unreadable pairs (None) are counted apart. Nothing readable: the numbers are None.
    `weights` (one a pair; PairOutcome.weight) make it a weighted mean, as a 5-level judge's strong verdicts need;
    the standard error is then the weighted mean's (equal weights give the plain formula back).

    >>> b = soft_win_rate([1.0, 0.75, 0.5, 0.25, None], seed=0)
    >>> b["n"], b["win_rate"], round(b["se"], 4), b["invalid"], b["ci"][0] < 0.625 < b["ci"][1]
    (4, 0.625, 0.1614, 1, True)
    >>> w = soft_win_rate([1.0, 0.75, 0.5, 0.25, None], seed=0, weights=[2, 2, 2, 2, 1])
    >>> w["win_rate"], round(w["se"], 4)
    (0.625, 0.1614)
    >>> soft_win_rate([1.0, 0.0], seed=0, weights=[3, 1])["win_rate"]
    0.75
    """
    import numpy as np

    weights = [1.0] * len(preferences) if weights is None else weights
    kept = [(v, w) for v, w in zip(preferences, weights, strict=True) if v is not None]
    values = np.array([v for v, _ in kept], dtype=np.float64)
    w = np.array([w for _, w in kept], dtype=np.float64)
    block: dict[str, Any] = {"n": int(values.size), "invalid": len(preferences) - int(values.size)}
    if not values.size:
        return block | {"win_rate": None, "se": None, "ci": None}
    mean = float((w * values).sum() / w.sum())
    n = values.size
    se = float(np.sqrt((w**2 * (values - mean) ** 2).sum() * n / (n - 1)) / w.sum()) if n > 1 else None
    rng = np.random.default_rng(seed)
    draw = rng.integers(0, n, size=(n_resamples, n))
    means = (w[draw] * values[draw]).sum(axis=1) / w[draw].sum(axis=1)
    lo, hi = np.percentile(means, [(1 - level) / 2 * 100, (1 + level) / 2 * 100])
    ci = [round(float(lo), 6), round(float(hi), 6)]
    return block | {"win_rate": round(mean, 6), "se": None if se is None else round(se, 6), "ci": ci}


def per_baseline(
    pairs: Sequence[PairOutcome], baselines: Sequence[str], n_resamples: int = 1000, seed: int = 0, judge: str = ""
) -> dict[str, dict[str, Any]]:
    """`summarise` per baseline (LIMA's both-orders outcomes), plus "soft": `soft_win_rate` over the same pairs;
    each baseline resamples with its own seed, content_seed(seed, judge, baseline)."""
    out = {}
    for b in baselines:
        mine = [p for p in pairs if p.baseline == b]
        block = summarise([p.outcome for p in mine], n_resamples, content_seed(seed, judge, b))
        soft = soft_win_rate(
            [p.preference for p in mine],
            n_resamples,
            content_seed(seed, judge, b, "soft"),
            weights=[p.weight for p in mine],
        )
        out[b] = block | {"soft": soft}
    return out


def reliability(pairs: Sequence[PairOutcome], judgments: Sequence[Judgment]) -> dict[str, Any]:
    """How far the judge can be trusted, measured on its own verdicts (no human labels needed).

    position_consistency: share of valid pairs whose two orders agree (a random 3-way judge: about 1/3);
    inconsistent_pairs: how many valid pairs' two orders disagree (each counted as a tie, LIMA's "neither");
    first_position_preference: share of decisive single verdicts that pick the answer shown first (unbiased: 0.5);
    invalid_rate: share of single verdicts that could not be read;
    length_bias: share of decisive pairs won by the longer answer (length-blind: about 0.5);
    option_mass: mean probability the judge put on the allowed letters (logprobs mode only).
    """
    valid = [p for p in pairs if p.outcome != "invalid"]
    agree = sum(candidate_view("ab", p.verdict_ab) == candidate_view("ba", p.verdict_ba) for p in valid)
    decisive = [j.verdict for j in judgments if j.verdict in ("a", "b")]
    sized = [p for p in valid if p.outcome in ("win", "loss") and p.candidate_chars != p.baseline_chars]
    longer_won = sum((p.outcome == "win") == (p.candidate_chars > p.baseline_chars) for p in sized)
    masses = [j.meta["option_mass"] for j in judgments if "option_mass" in j.meta]
    return {
        "position_consistency": _share(agree, len(valid)),
        "inconsistent_pairs": len(valid) - agree,
        "first_position_preference": _share(decisive.count("a"), len(decisive)),
        "invalid_rate": _share(sum(j.verdict == "invalid" for j in judgments), len(judgments)),
        "length_bias": _share(longer_won, len(sized)),
        "option_mass": sum(masses) / len(masses) if masses else None,
        "valid_pairs": len(valid),
        "decisive_pairs": len(sized),
    }


def grade_shares(ratings: Iterable[Rating], n_resamples: int = 1000, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Per model: `share_block` over excellent / pass / fail (LIMA Figure 3) with bootstrap CIs.

    Each model resamples with its own seed, content_seed(seed, "grades", model); unreadable grades are counted
    as "invalid", never folded into a share.
    """
    by_model: dict[str, list[str]] = {}
    for r in ratings:
        by_model.setdefault(r.model, []).append(r.grade)
    return {
        model: share_block(grades, GRADES, n_resamples, content_seed(seed, "grades", model))
        for model, grades in sorted(by_model.items())
    }
