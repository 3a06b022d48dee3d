"""curate() with the variants that select by model-based scores (curate/scored.py): what is taken, why every other
candidate is not (with its numbers), the scores on the records, the sample that is scored, and the summary."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lessismore.curate import curate, curate_metrics
from lessismore.records import Example, Message, Origin
from tests.specs import curate_spec
from tests.unit.test_curate_funnel import read_drop

WINDOW = {fmt: (10, 400) for fmt in ("stackexchange_xml", "lima_jsonl", "wikihow_csv")}


def ex(row: int, q: float | None, *, ifd: float = 0.5, source: str = "wiki", topic: str = "") -> Example:
    prompt = f"Question {row} about {topic or f'topic number {row}'}?"
    answer = f"A distinct answer number {row} that explains {topic or row} well enough."
    return Example(
        (Message("user", prompt), Message("assistant", answer)),
        Origin(source, f"data/{source}.jsonl", str(row)),
        {"format": "lima_jsonl", "split": "train", "q": q, "ifd": ifd},
    )


class Scores:
    """Scores read off each example's meta (a seam: the real scorers are tested in test_scores_*), counting calls."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, examples):
        self.seen += [e.id for e in examples]
        return {
            "quality": [e.meta["q"] for e in examples],
            "complexity": [3.0 for _ in examples],
            "ifd": [e.meta["ifd"] for e in examples],
        }


def run(examples, variant="scored", budget=2, quotas=None, embed=None, scores=None, **score_params):
    score_params = {"weights": {"quality": 1.0, "complexity": 0.0, "ifd": 0.0}, "per_pick": 0, **score_params}
    spec = curate_spec(variant=variant, budget=budget, response_chars=WINDOW, scores=score_params)
    dropped: list = []
    scorer = scores or Scores()
    out = lambda line: dropped.append(read_drop(line))  # noqa: E731
    result = curate([examples], [], spec, quotas=quotas or {}, seed=0, out=out, embed=embed, score=scorer)
    assert len(result.selected) + len(dropped) == len(examples), "the funnel must add up"
    return result, {d.record["id"]: d for d in dropped}, scorer


def test_the_best_scored_are_taken_and_every_other_says_why_with_its_numbers():
    pool = [ex(1, 5.0), ex(2, 2.0), ex(3, 4.0), ex(4, None), ex(5, 6.0, ifd=1.05), ex(6, 1.0)]
    result, dropped, _ = run(pool, budget=2, cut=1.5, weights={"quality": 1.0, "ifd": 0.0, "complexity": 0.0})
    assert [e.id for e in result.selected] == [pool[0].id, pool[2].id]  # 5.0 and 4.0 (6.0 is vetoed by its IFD)
    assert {e.meta["scores"]["quality"] for e in result.selected} == {5.0, 4.0}

    assert dropped[pool[1].id].reason == "over_budget"  # scored 2.0, above the cut, but the budget went to better
    filled = "combined score 2.00: the better scored filled its place; scores: quality 2.000"
    assert filled in dropped[pool[1].id].detail
    assert dropped[pool[3].id].reason == "unscored"
    assert "no quality score could be read" in dropped[pool[3].id].detail
    assert dropped[pool[4].id].reason == "ifd_above_max"
    assert "IFD 1.050 >= curate.scores.ifd_max 1" in dropped[pool[4].id].detail
    assert dropped[pool[5].id].reason == "score_below_cut"
    assert "combined score 1.00 below the cut 1.5" in dropped[pool[5].id].detail
    assert dropped[pool[5].id].record["meta"]["scores"] == {
        "quality": 1.0,
        "complexity": 3.0,
        "ifd": 0.5,
        "combined": 1.0,
    }
    assert dropped[pool[5].id].detail.startswith("data/wiki.jsonl row 6: ")


def test_a_candidate_too_close_to_a_better_one_names_it_and_the_cosine():
    pool = [ex(1, 5.0, topic="ovens"), ex(2, 4.0, topic="ovens again"), ex(3, 3.0, topic="bicycles")]
    vectors = {pool[0].prompt: [1.0, 0.0], pool[1].prompt: [0.95, 0.31], pool[2].prompt: [0.0, 1.0]}

    def embed(texts):
        v = np.array([vectors[t] for t in texts], dtype=np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    result, dropped, _ = run(pool, budget=2, embed=embed, min_distance=0.1)
    assert [e.id for e in result.selected] == [pool[0].id, pool[2].id]
    close = dropped[pool[1].id]
    assert close.reason == f"too_close:{pool[0].id}"
    assert f"too close (cos 0.95) to {pool[0].id}: data/wiki.jsonl row 1" in close.detail
    assert result.diversity is not None and result.diversity["n"] == 2

    result, dropped, _ = run(pool, budget=2, embed=embed, min_distance=0.0)  # the check off: by score alone
    assert [e.id for e in result.selected] == [pool[0].id, pool[1].id]


def test_only_a_seeded_sample_per_place_is_scored_the_rest_says_so():
    pool = [ex(i, float(i % 5)) for i in range(1, 21)]
    result, dropped, scorer = run(pool, budget=2, per_pick=3)
    assert len(scorer.seen) == 6  # 3 per place, 2 places
    unscored = [d for d in dropped.values() if d.reason == "not_scored"]
    assert len(unscored) == 14 and "per_pick" in unscored[0].detail
    assert all("scores" not in d.record["meta"] for d in unscored)
    again, _, _ = run(pool, budget=2, per_pick=3)
    assert [e.id for e in again.selected] == [e.id for e in result.selected]  # seeded


def test_the_ablations_rank_by_one_score_without_the_cut():
    pool = [ex(1, 5.0, ifd=0.2), ex(2, 1.0, ifd=0.9), ex(3, 3.0, ifd=0.6)]
    by_ifd, _, _ = run(pool, variant="ifd_only", budget=1, cut=100.0)
    assert [e.id for e in by_ifd.selected] == [pool[1].id]
    by_quality, _, _ = run(pool, variant="quality_only", budget=1, cut=100.0)
    assert [e.id for e in by_quality.selected] == [pool[0].id]


def test_a_curated_source_is_taken_whole_unscored_and_quotas_hold():
    from lessismore.curate import source_rules
    from tests.specs import source

    pool = [ex(1, 5.0), ex(2, 4.0), ex(3, 3.0), ex(4, None, source="lima"), ex(5, None, source="lima")]
    sources = [
        source("wiki", "lima_jsonl", "data/wiki.jsonl", "train", quota=1, curated=False),
        source("lima", "lima_jsonl", "data/lima.jsonl", "train", quota=0, curated=True),
    ]
    spec = curate_spec(variant="scored", budget=3, response_chars=WINDOW, scores={"per_pick": 0})
    dropped, scorer = [], Scores()
    result = curate(
        [pool],
        [],
        spec,
        quotas={"wiki": 1},
        seed=0,
        out=lambda line: dropped.append(read_drop(line)),
        score=scorer,
        rules=source_rules(spec, sources),
    )
    assert sorted(e.id for e in result.selected) == sorted([pool[0].id, pool[3].id, pool[4].id])
    assert set(scorer.seen) == {pool[0].id, pool[1].id, pool[2].id}  # the curated rows are not scored
    assert {d.reason for d in dropped} == {"over_quota"}


def test_metrics_carry_the_score_distributions_and_extremes():
    pool = [ex(i, float(i)) for i in range(1, 6)]
    result, _, _ = run(pool, budget=2)
    m = curate_metrics(result, curate_spec(variant="scored", budget=2), quotas={})
    wiki = m["scores"]["per_source"]["wiki"]
    assert wiki["quality"]["candidates"] == {"n": 5, "mean": 3.0, "quartiles": [2.0, 3.0, 4.0]}
    assert wiki["quality"]["selected"]["n"] == 2 and wiki["quality"]["selected"]["mean"] == 4.5
    assert [x["scores"]["quality"] for x in wiki["extremes"]["top"]] == [5.0, 4.0, 3.0]
    assert [x["selected"] for x in wiki["extremes"]["bottom"]] == [False, False, False]
    assert m["scores"]["scored"] == 5
    json.dumps(m)  # the metrics file must serialise


def test_a_scored_variant_without_a_scorer_is_refused():
    spec = curate_spec(variant="scored", budget=2, response_chars=WINDOW)
    with pytest.raises(ValueError, match="selects by scores"):
        curate([[ex(1, 1.0)]], [], spec, quotas={}, seed=0, out=lambda d: None)


def test_places_a_veto_left_open_are_filled_from_a_further_sample():
    pool = [ex(i, 3.0, ifd=0.5 if i in (7, 13) else 1.2) for i in range(1, 21)]  # two candidates not vetoed
    weights = {"quality": 1.0, "ifd": 1.0, "complexity": 0.0}
    result, dropped, scorer = run(pool, budget=2, per_pick=1, weights=weights)
    assert sorted(e.id for e in result.selected) == sorted([pool[6].id, pool[12].id])
    assert len(scorer.seen) == len(set(scorer.seen)) > 2  # sampled again, nothing scored twice
    reasons = {d.reason for d in dropped.values()}
    assert reasons <= {"ifd_above_max", "not_scored"} and "ifd_above_max" in reasons
