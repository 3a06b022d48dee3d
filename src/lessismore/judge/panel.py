"""A panel of judges read as one (PoLL, Verga et al. 2024: a jury of diverse judges beats one large judge): params
judge.panel names the judges and how their verdicts combine.

Sits after judge/outcome.py (each judge's PairOutcomes) and beside judge/summary.py, whose statistics it reuses;
judge/run.py adds the panel's block to metrics/judge.json ("panel") next to each judge's. Only the pairs every
panel judge judged count. A pair's outcome is the strict majority of the judges' outcomes (win, tie or loss; an
unreadable one votes for nothing); without a majority it is a tie, and with no readable outcome it is invalid.
Its soft preference is the mean of the judges' soft preferences (combine "mean"; None if any is unreadable) or the
majority outcome's score, 1 / 0.5 / 0 (combine "majority"). A 5-level judge's preference is its own weighted one
(outcome.py, judge.strong_weight); in the panel every shared pair counts once (weight 1).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from lessismore.judge.outcome import PairOutcome, pair_outcomes
from lessismore.judge.ratings import SCORES
from lessismore.judge.stats import content_seed, per_baseline
from lessismore.records import Judgment


def combine(outcomes: Sequence[PairOutcome], how: str) -> PairOutcome:
    """One pair's panel outcome from each judge's (see the module doc).

    >>> o = [PairOutcome("p", "base", v, "a", "b", preference=q) for v, q in [("win", .9), ("win", .7), ("tie", .5)]]
    >>> c = combine(o, "mean"); c.outcome, round(c.preference, 4)
    ('win', 0.7)
    >>> combine([*o[:1], PairOutcome("p", "base", "loss", "b", "a", preference=.2)], "majority").outcome
    'tie'
    """
    first = outcomes[0]
    votes = Counter(o.outcome for o in outcomes if o.outcome in SCORES)
    if not votes:
        outcome = "invalid"
    else:
        top, n = votes.most_common(1)[0]
        outcome = top if n * 2 > len(outcomes) else "tie"
    if how == "mean":
        prefs = [o.preference for o in outcomes]
        preference = None if None in prefs else sum(prefs) / len(prefs)  # type: ignore[arg-type]
    else:
        preference = SCORES.get(outcome)
    ids = tuple(i for o in outcomes for i in o.ids)
    return replace(first, outcome=outcome, ids=ids, preference=preference, weight=1.0)  # type: ignore[arg-type]


def panel_summary(
    judgments: Sequence[Judgment],
    members: Sequence[str],
    how: str,
    *,
    candidate: str,
    baselines: Sequence[str],
    lengths: Mapping[str, int],
    n_resamples: int,
    base_seed: int,
    strong_weight: float,
) -> dict[str, Any]:
    """The panel's block: who sits on it, how it combines, and per baseline the shares and the soft win rate over
    the pairs every member judged. `strong_weight`: params judge.strong_weight, for 5-level members."""
    by_judge = {
        name: {
            (o.prompt_id, o.baseline): o
            for o in pair_outcomes([j for j in judgments if j.judge == name], candidate, lengths, strong_weight)
        }
        for name in members
    }
    shared = sorted(set.intersection(*(set(pairs) for pairs in by_judge.values())))
    outcomes = [combine([by_judge[name][key] for name in members], how) for key in shared]
    seed = content_seed(base_seed, "panel", *members)
    return {
        "judges": list(members),
        "combine": how,
        "pairs": len(shared),
        "baselines": per_baseline(outcomes, baselines, n_resamples, seed, judge="panel"),
    }
