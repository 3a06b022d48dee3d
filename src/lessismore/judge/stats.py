"""Numbers from verdicts: win / tie / loss shares with bootstrap intervals, and how reliable the judge was.

Sits after judge/protocol.py (PairOutcome, Judgment, Rating) and feeds metrics/judge.json and report/. Shares are
over valid pairs only; invalid pairs are counted next to them, never folded in. Undefined shares (nothing to
divide by) are None, so the report can say "n/a" instead of a misleading 0%.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from lessismore.judge.protocol import PairOutcome, candidate_view
from lessismore.records import Judgment, Rating

SHARES = ("win", "tie", "loss")


def _share(num: int, den: int) -> float | None:
    return num / den if den else None


def bootstrap_ci(
    outcomes: Sequence[str], n_resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> dict[str, list[float] | None]:
    """Percentile bootstrap interval of each share, resampling valid pairs with replacement (seeded).

    >>> ci = bootstrap_ci(["win"] * 6 + ["loss"] * 4, seed=1)
    >>> ci["win"][0] < 0.6 < ci["win"][1], ci["tie"]
    (True, [0.0, 0.0])
    """
    import numpy as np

    valid = np.array([SHARES.index(o) for o in outcomes if o in SHARES], dtype=np.int64)
    if valid.size == 0:
        return dict.fromkeys(SHARES)
    rng = np.random.default_rng(seed)
    samples = valid[rng.integers(0, valid.size, size=(n_resamples, valid.size))]
    tails = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]  # percentiles, e.g. 2.5 and 97.5
    out = {}
    for code, name in enumerate(SHARES):
        lo, hi = np.percentile((samples == code).mean(axis=1), tails)
        out[name] = [round(float(lo), 6), round(float(hi), 6)]
    return out


def summarise(outcomes: Sequence[str], n_resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """One baseline's block of metrics/judge.json: n valid pairs, shares, invalid count, CIs and raw counts.

    >>> s = summarise(["win", "win", "tie", "loss", "invalid"])
    >>> s["n"], s["win"], s["invalid"], s["counts"]
    (4, 0.5, 1, {'win': 2, 'tie': 1, 'loss': 1})
    """
    counts = Counter(outcomes)
    n = sum(counts[k] for k in SHARES)
    block: dict[str, Any] = {"n": n}
    block.update({k: _share(counts[k], n) for k in SHARES})
    block["invalid"] = len(outcomes) - n
    block["ci"] = bootstrap_ci(outcomes, n_resamples, seed)
    block["counts"] = {k: counts[k] for k in SHARES}
    return block


def per_baseline(
    pairs: Sequence[PairOutcome], baselines: Sequence[str], n_resamples: int = 1000, seed: int = 0
) -> dict[str, dict[str, Any]]:
    return {b: summarise([p.outcome for p in pairs if p.baseline == b], n_resamples, seed) for b in baselines}


def reliability(pairs: Sequence[PairOutcome], judgments: Sequence[Judgment]) -> dict[str, Any]:
    """How far the judge can be trusted, measured on its own verdicts (no human labels needed).

    position_consistency: share of valid pairs whose two orders agree (a random 3-way judge: about 1/3);
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
        "first_position_preference": _share(decisive.count("a"), len(decisive)),
        "invalid_rate": _share(sum(j.verdict == "invalid" for j in judgments), len(judgments)),
        "length_bias": _share(longer_won, len(sized)),
        "option_mass": sum(masses) / len(masses) if masses else None,
        "valid_pairs": len(valid),
        "decisive_pairs": len(sized),
    }


def grade_shares(ratings: Iterable[Rating]) -> dict[str, dict[str, Any]]:
    """Per model: share of excellent / pass / fail among readable grades, n readable, and the unreadable count."""
    by_model: dict[str, Counter] = {}
    for r in ratings:
        by_model.setdefault(r.model, Counter())[r.grade] += 1
    out = {}
    for model, c in sorted(by_model.items()):
        n = c["excellent"] + c["pass"] + c["fail"]
        out[model] = {g: _share(c[g], n) for g in ("excellent", "pass", "fail")} | {"n": n, "invalid": c["invalid"]}
    return out


def tie_discounted_agreement(x: str, y: str) -> float:
    """LIMA's agreement between two annotators: 1 if equal, 0.5 if exactly one says tie, else 0.

    >>> tie_discounted_agreement("a", "a"), tie_discounted_agreement("a", "tie"), tie_discounted_agreement("a", "b")
    (1.0, 0.5, 0.0)
    """
    if x == y:
        return 1.0
    return 0.5 if "tie" in (x, y) else 0.0
