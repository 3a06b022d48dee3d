"""One judge's block of metrics/judge.json, and the agreement between judges: the judge stage's statistics glue.

Sits after judge/protocol.py and judge/injection.py, and calls judge/stats.py (shares, intervals, reliability),
judge/ratings.py (Bradley-Terry) and judge/agreement.py (tie-discounted accuracy, Cohen's kappa). Every bootstrap
seed derives from content (the base seed, the judge and what is resampled), so a re-run reproduces every interval.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lessismore.judge.agreement import pairwise_agreement
from lessismore.judge.injection import summary as injection_summary
from lessismore.judge.outcome import pair_outcomes
from lessismore.judge.ratings import bt_with_ci, outcome_rows
from lessismore.judge.stats import content_seed, grade_shares, per_baseline, reliability
from lessismore.records import Judgment, Rating


def judge_summary(
    judgments: Sequence[Judgment],
    ratings: Sequence[Rating],
    injected: Sequence[Judgment],
    attacks: Sequence[str],
    *,
    candidate: str,
    baselines: Sequence[str],
    lengths: Mapping[str, int],
    n_resamples: int = 1000,
    base_seed: int = 0,
) -> dict[str, Any]:
    """Win / tie / loss per baseline with CIs, Bradley-Terry ratings, reliability, grades and the injection result.

    `injected` holds the twins' Judgments in the order `injection.plant` made them (two per twin), `attacks` their
    attack names; the clean pairs they are compared with are found in `judgments` by (prompt, baseline).
    """
    judge = judgments[0].judge if judgments else ""
    outcomes = pair_outcomes(judgments, candidate, lengths)
    blocks = per_baseline(outcomes, baselines, n_resamples, base_seed, judge=judge)
    rows = outcome_rows(outcomes, candidate)
    rated = {m for row in rows for m in row[:2]}
    anchor = next((b for b in baselines if b in rated), None)  # the first baseline with a readable pair
    clean = {(o.prompt_id, o.baseline): o for o in outcomes}
    twins = pair_outcomes(injected, candidate) if injected else []
    twin_order = [(j.prompt_id, j.model_b if j.order == "ab" else j.model_a) for j in injected[::2]]
    by_key = {(o.prompt_id, o.baseline): o for o in twins}
    pairs_back = [(clean[k], by_key[k]) for k in twin_order if k in clean and k in by_key]
    return {
        "baselines": blocks,
        "ratings": bt_with_ci(rows, anchor, n_resamples, content_seed(base_seed, judge, "bradley-terry"))
        if anchor
        else {},
        "reliability": reliability(outcomes, judgments),
        "grades": grade_shares(ratings, n_resamples, content_seed(base_seed, judge, "grades")),
        "injection": injection_summary([c for c, _ in pairs_back], [t for _, t in pairs_back], attacks),
    }


def agreement_between(judgments: Sequence[Judgment], candidate: str) -> dict[str, Any]:
    """Agreement of every two judges on the pairs both judged, over their win / tie / loss outcomes."""
    by_judge: dict[str, list[Judgment]] = {}
    for j in judgments:
        by_judge.setdefault(j.judge, []).append(j)
    labels = {
        name: {f"{o.prompt_id}|{o.baseline}": o.outcome for o in pair_outcomes(js, candidate)}
        for name, js in sorted(by_judge.items())
    }
    return pairwise_agreement(labels) if len(labels) > 1 else {}
