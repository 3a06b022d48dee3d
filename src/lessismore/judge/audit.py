"""How far a judge agrees with people: a configured judge run on human-labelled pairs (`lessismore judge-audit`).

Sits beside the judge stage and reuses its parts: the pairs (judge/external.py, format `pairs` or any format of
item 1 with one preference a row) are judged in both orders by judge/protocol.py `judge_pairs`, read into pair
outcomes (judge/outcome.py) from the second output's side, and compared with the label: 2 is a win for output_2,
1 a loss, 0 a tie. Reported, each with a percentile bootstrap interval over pairs:
- exact agreement, ties counted as a label of their own;
- LIMA's tie-discounted agreement (1 equal, 0.5 when exactly one side says tie, 0 otherwise);
- agreement without ties: on the pairs the person called decisive, how often the judge picked the same side;
and the judge's own reliability on them (judge/stats.py `reliability`: position consistency, first-position
preference, length bias, unreadable verdicts). A pair the judge could not read counts against it in every
agreement (a judge that never answers cannot agree), and is counted apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lessismore.judge import Template
from lessismore.judge.agreement import tie_discounted_agreement
from lessismore.judge.cache import KeyedCache
from lessismore.judge.external import External
from lessismore.judge.outcome import pair_outcomes
from lessismore.judge.protocol import Backend, JudgeRun, Pair, judge_pairs
from lessismore.judge.stats import reliability
from lessismore.records import Origin, Prompt, Response

LABEL = {1.0: "win", 0.0: "loss", 0.5: "tie"}  # output_2's side of a human label


def audit(
    rows: Sequence[External],
    backend: Backend,
    template: Template,
    run: JudgeRun,
    cache: KeyedCache,
    *,
    n_resamples: int,
    seed: int,
) -> dict[str, Any]:
    """The judge's agreement with the labels of `rows` (read as "output_2" against "output_1") and its reliability."""
    pairs, expected, lengths = [], {}, {}
    for k, r in enumerate(rows):
        if r.preference not in LABEL:
            raise ValueError(f"{r.file} row {r.row}: a label is 1, 2 or 0 (tie); got preference {r.preference}")
        prompt = Prompt(text=r.instruction, split="test", origin=Origin("audit", r.file, str(r.row)), id=f"pair-{k}")
        first, second = (
            Response(prompt.id, m, "", t, {}) for m, t in (("output_1", r.baseline_text), ("output_2", r.model_text))
        )
        pairs.append(Pair(prompt, second, first))
        expected[prompt.id] = LABEL[r.preference]
        lengths |= {first.id: len(first.text), second.id: len(second.text)}
    judgments, cost = judge_pairs(pairs, backend, template, run, cache, desc=f"audit {run.name}")
    outcomes = {o.prompt_id: o.outcome for o in pair_outcomes(judgments, "output_2", lengths)}
    said = [(expected[p.prompt.id], outcomes.get(p.prompt.id, "invalid")) for p in pairs]
    exact = [float(h == j) for h, j in said]
    discounted = [tie_discounted_agreement(h, j) if j != "invalid" else 0.0 for h, j in said]
    decisive = [float(h == j) for h, j in said if h != "tie"]
    rng = np.random.default_rng(seed % 2**32)
    return {
        "pairs": len(pairs),
        "unreadable": sum(j == "invalid" for _, j in said),
        "labels": {name: sum(h == name for h, _ in said) for name in ("win", "tie", "loss")},
        "agreement": _with_ci(exact, rng, n_resamples),
        "tie_discounted": _with_ci(discounted, rng, n_resamples),
        "agreement_without_ties": _with_ci(decisive, rng, n_resamples),
        "reliability": reliability(pair_outcomes(judgments, "output_2", lengths), judgments),
        "calls": cost.calls,
    }


def _with_ci(values: Sequence[float], rng: np.random.Generator, n: int, level: float = 0.95) -> dict[str, Any]:
    """The mean and a percentile bootstrap interval over the items (None when there are none)."""
    v = np.asarray(values, dtype=np.float64)
    if not v.size:
        return {"n": 0, "value": None, "ci": None}
    means = v[rng.integers(0, v.size, size=(n, v.size))].mean(axis=1)
    lo, hi = np.percentile(means, [(1 - level) / 2 * 100, (1 + level) / 2 * 100])
    return {"n": int(v.size), "value": round(float(v.mean()), 6), "ci": [round(float(lo), 6), round(float(hi), 6)]}
