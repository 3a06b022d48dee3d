"""One judge's block of metrics/judge.json, and the agreement between judges: the judge stage's statistics glue.

Sits after judge/protocol.py and judge/injection.py, and calls judge/stats.py (shares, intervals, reliability),
judge/ratings.py (Bradley-Terry) and judge/agreement.py (tie-discounted accuracy, Cohen's kappa). Every bootstrap
seed derives from content (the base seed, the judge and what is resampled), so a re-run reproduces every interval.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lessismore.judge.agreement import pairwise_agreement
from lessismore.judge.external import External
from lessismore.judge.injection import summary as injection_summary
from lessismore.judge.outcome import PairOutcome, pair_outcomes
from lessismore.judge.ratings import bt_with_ci, outcome_rows
from lessismore.judge.stats import GRADES, SHARES, content_seed, grade_shares, per_baseline, reliability, share_block
from lessismore.judge.style import style_controlled
from lessismore.judge.winrate import length_controlled
from lessismore.records import Judgment, Rating


def judge_summary(
    judgments: Sequence[Judgment],
    ratings: Sequence[Rating],
    injected: Sequence[Judgment],
    attacks: Sequence[str],
    *,
    candidate: str,
    baselines: Sequence[str],
    texts: Mapping[str, str],
    n_resamples: int,
    base_seed: int,
    strong_weight: float,
) -> dict[str, Any]:
    """Win / tie / loss per baseline with CIs (both-orders, soft, length-controlled), Bradley-Terry ratings (and
    with style control), reliability, grades and the injection result. `strong_weight`: what a 5-level judge's
    strong verdict weighs in the soft win rate (outcome.py; params judge.strong_weight).

    `texts` maps each answer's Response id to its text (lengths, style). `injected` holds the twins' Judgments in
    the order `injection.plant` made them (two per twin), `attacks` their attack names; the clean pairs they are
    compared with are found in `judgments` by (prompt, baseline).
    """
    judge = judgments[0].judge if judgments else ""
    lengths = {rid: len(text) for rid, text in texts.items()}
    outcomes = pair_outcomes(judgments, candidate, lengths, strong_weight)
    blocks = per_baseline(outcomes, baselines, n_resamples, base_seed, judge=judge)
    for b, block in blocks.items():  # AlpacaEval 2's length control, over the soft preferences
        mine = [o for o in outcomes if o.baseline == b]
        seed = content_seed(base_seed, judge, b, "length")
        block["length_controlled"] = _length_controlled(mine, candidate, bool(lengths), seed)
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
        "style_control": style_controlled(
            outcomes, candidate, texts, anchor, n_resamples=n_resamples, seed=content_seed(base_seed, judge, "style")
        )
        if anchor
        else {},
        "reliability": reliability(outcomes, judgments),
        "grades": grade_shares(ratings, n_resamples, content_seed(base_seed, judge, "grades")),
        "injection": injection_summary([c for c, _ in pairs_back], [t for _, t in pairs_back], attacks),
    }


def judge_labels(judgments: Sequence[Judgment], candidate: str) -> dict[str, dict[str, str]]:
    """{judge: {"prompt_id|baseline": win / tie / loss}}: each judge as a rater for judge/agreement.py."""
    by_judge: dict[str, list[Judgment]] = {}
    for j in judgments:
        by_judge.setdefault(j.judge, []).append(j)
    return {
        name: {f"{o.prompt_id}|{o.baseline}": o.outcome for o in pair_outcomes(js, candidate)}
        for name, js in sorted(by_judge.items())
    }


def agreement_between(judgments: Sequence[Judgment], candidate: str) -> dict[str, Any]:
    """Agreement of every two judges on the pairs both judged, over their win / tie / loss outcomes."""
    labels = judge_labels(judgments, candidate)
    return pairwise_agreement(labels) if len(labels) > 1 else {}


def human_summary(
    rows: Sequence[Mapping[str, Any]],
    judges: Mapping[str, Mapping[str, str]],
    *,
    baselines: Sequence[str],
    n_resamples: int,
    base_seed: int,
) -> dict[str, Any]:
    """Human results from outputs/human_judgments.jsonl (lessismore annotate --export): win / tie / loss per
    baseline and grade shares per model, pooled over annotators, with CIs; agreement human-human and human-judge.

    Raters are named "human:<annotator>" so an annotator can never be mistaken for a judge of the same name.
    """
    pairwise = [r for r in rows if r.get("kind") == "pairwise"]
    absolute = [r for r in rows if r.get("kind") == "absolute"]
    humans: dict[str, dict[str, str]] = {}
    for r in pairwise:
        humans.setdefault(f"human:{r['annotator']}", {})[f"{r['prompt_id']}|{r['baseline']}"] = r["outcome"]
    models = sorted({r["model"] for r in absolute})
    return {
        "annotators": sorted({r["annotator"] for r in rows}),
        "judgments": len(rows),
        "baselines": _blocks(pairwise, "baseline", baselines, SHARES, n_resamples, base_seed),
        "grades": _blocks(absolute, "model", models, GRADES, n_resamples, base_seed),
        "agreement": pairwise_agreement({**humans, **judges}) if len(humans) + len(judges) > 1 else {},
    }


def _blocks(
    rows: Sequence[Mapping[str, Any]],
    by: str,
    groups: Sequence[str],
    categories: Sequence[str],
    n_resamples: int,
    base_seed: int,
) -> dict[str, dict[str, Any]]:
    """Human outcomes grouped by `by` (baseline or model): a share block with CIs per group, seeded by content."""
    return {
        g: share_block(
            [r["outcome"] for r in rows if r[by] == g],
            categories,
            n_resamples,
            content_seed(base_seed, "human", by, g),
        )
        for g in groups
    }


def _length_controlled(pairs: Sequence[PairOutcome], candidate: str, known: bool, seed: int) -> dict[str, Any]:
    """judge/winrate.py's length-controlled win rate over one baseline's pairs (the soft preference for the
    candidate, each answer's length); one candidate, so no instruction difficulty is estimated."""
    rows = [
        External(
            instruction=o.prompt_id,
            model=candidate,
            baseline=o.baseline,
            preference=o.preference,
            model_chars=o.candidate_chars if known else None,
            baseline_chars=o.baseline_chars if known else None,
            judge="",
            file="",
            row=i,
        )
        for i, o in enumerate(pairs)
    ]
    return length_controlled(rows, {}, seed=seed)
