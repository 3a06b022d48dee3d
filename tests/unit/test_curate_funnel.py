"""curate(): the whole funnel (reasons, nothing lost, per-source counts), the rewrites and every variant."""

from __future__ import annotations

import json

import numpy as np

from lessismore.config import SourceRules
from lessismore.curate import curate, curate_metrics, describe_shortfall, shortfall, source_rules
from lessismore.curate.transforms import rewrite, rewrite_this_article
from lessismore.records import Dropped, Example, Message, Origin, Prompt, from_dict
from tests.specs import curate_spec, source

IMPERSONAL = "Use `git rebase -i` to squash the commits, then force-push the branch."
ANSWERS = {  # distinct answers, so that near-duplicate removal leaves them alone
    1: "Squash the commits with an interactive rebase.",
    3: "Rebase the branch onto main before merging.",
    4: "Cherry-pick the fix onto the release branch.",
    5: "Revert the merge commit and push the revert.",
}
TOPICS = ["git rebase", "sourdough starter", "bicycle chain", "tax return", "python asyncio", "roof leak"]


def ex(answer: str = IMPERSONAL, *, prompt: str = "How?", source: str = "se", row: int = 1, **meta) -> Example:
    fmt = meta.pop("fmt", "stackexchange_xml" if source.startswith("se") else "lima_jsonl")
    return Example(
        messages=(Message("user", prompt), Message("assistant", answer)),
        origin=Origin(source, f"data/{source}.xml", str(row)),
        meta={"format": fmt, "split": "train", **meta},
    )


def read_drop(line: bytes) -> Dropped:
    """A quarantine line as curate writes it, read back."""
    return from_dict(Dropped, json.loads(line))


def funnel(examples, prompts, spec, batch=None, **kw):
    """curate() over `examples` in batches of `batch` (default: one batch); (the result, its drops in the order
    the stage writes them to the quarantine, read back from their lines)."""
    dropped = []
    batch = batch or max(len(examples), 1)
    batches = [examples[i : i + batch] for i in range(0, len(examples), batch)]
    result = curate(batches, list(prompts), spec, seed=0, out=lambda line: dropped.append(read_drop(line)), **kw)
    return result, dropped


def run(examples, prompts=(), variant="lima", budget=3, quotas=None, embed=None, batch=None, **kw):
    window = {fmt: (10, 400) for fmt in ("stackexchange_xml", "lima_jsonl", "wikihow_csv")}
    spec = curate_spec(variant=variant, budget=budget, response_chars=window, **kw)
    return funnel(examples, prompts, spec, batch, quotas={"se": 2} if quotas is None else quotas, embed=embed)


def test_funnel_drops_with_reasons_and_loses_nothing():
    examples = [
        ex(ANSWERS[1], score=20, row=1, prompt="p1"),
        ex("I did it like this, works.", score=20, row=2, prompt="p2"),  # first person
        ex(ANSWERS[3], score=20, row=3, prompt="P1 "),  # duplicate prompt of row 1
        ex(ANSWERS[4], score=20, row=4, prompt="p4"),
        ex(ANSWERS[5], score=20, row=5, prompt="p5"),  # over the se quota of 2
        ex("A long handwritten answer.", source="hand", row=6, prompt="p6"),
    ]
    result, dropped = run(examples)
    steps = [(s["step"], s["n"]) for s in result.funnel]
    assert steps == [("validated", 6), ("filters", 5), ("dedup", 4), ("decontam", 4), ("near_dup", 4), ("selected", 3)]
    assert result.funnel[-1]["per_source"] == {"hand": 1, "se": 2}
    assert len(result.selected) == 3 and len(result.selected) + len(dropped) == 6
    assert result.dropped_by_reason() == {"duplicate_prompt": 1, "first_person": 1, "over_quota": 1}
    dup = next(d for d in dropped if d.reason.startswith("duplicate_prompt"))
    assert dup.reason == f"duplicate_prompt:{examples[0].id}" and dup.stage == "curate"
    assert dup.detail.startswith("data/se.xml row 3: ") and dup.record["id"] == examples[2].id
    assert f"kept {examples[0].id}: data/se.xml row 1" in dup.detail  # the evidence: which example was kept
    assert result.per_source() == {"hand": {"candidates": 1, "selected": 1}, "se": {"candidates": 5, "selected": 2}}
    assert result.diversity is None  # no embedder given


def test_an_under_filled_budget_and_quota_are_said_with_their_reasons():
    examples = [
        ex(ANSWERS[1], score=20, row=1, prompt="p1"),
        ex("I did it like this, works.", score=20, row=2, prompt="p2"),  # first person
        ex(ANSWERS[3], score=2, row=3, prompt="p3"),  # score under 10
        ex("A long handwritten answer.", source="hand", row=6, prompt="p6"),
    ]
    result, _ = run(examples, budget=5, quotas={"se": 3, "hand": 1})
    short = shortfall(result, 5, {"se": 3, "hand": 1})
    reasons = {"first_person": 1, "low_score": 1}
    assert short == {
        "budget": 5,
        "selected": 2,
        "short_by": 3,
        "sources": {"se": {"quota": 3, "selected": 1, "short_by": 2, "reasons": reasons}},
    }
    said = describe_shortfall(short)
    assert (
        said
        == "selected 2 of the budget 5 (short by 3); se: 1 of its quota 3 (its drops: first_person 1, low_score 1)"
    )
    metrics = curate_metrics(result, curate_spec(budget=5), quotas={"se": 3, "hand": 1})
    assert metrics["budget_shortfall"] == short
    filled, _ = run(examples, budget=2, quotas={"se": 1, "hand": 1})
    assert describe_shortfall(shortfall(filled, 2, {"se": 1, "hand": 1})) == ""


def test_a_curated_source_is_taken_whole_and_a_source_may_have_its_own_rule_values():
    lima = [ex(f"Short, chosen by people {i}.", source="lima", row=i, prompt=f"lima {i}") for i in range(3)]
    lima.append(ex("Short, chosen by people 0.", source="lima", row=9, prompt="lima 0"))  # a duplicate still goes
    mined = [ex(f"{ANSWERS[i]} ({i})", score=20, row=i, prompt=f"se {i}") for i in (1, 3, 4, 5)]
    alpaca = [ex("Ok.", source="alpaca", row=1, prompt="a1"), ex("Fine.", source="alpaca", row=2, prompt="a2")]
    spec = curate_spec(budget=5, response_chars={"stackexchange_xml": (20, 400)}, diversity="none")
    sources = [
        source("lima", "alpaca_json", "l.json", "train", quota=0, curated=True),
        source("se", "stackexchange_xml", "se.xml", "train", quota=0, curated=False),
        source(
            "alpaca", "alpaca_json", "a.json", "train", quota=1, curated=False, rules=SourceRules(min_response_chars=3)
        ),
    ]
    rules = source_rules(spec, sources)
    result, dropped = funnel(lima + mined + alpaca, [], spec, quotas={"alpaca": 1}, rules=rules)
    chosen = [(e.origin.source, e.origin.row) for e in result.selected]
    assert [r for s, r in chosen if s == "lima"] == ["0", "1", "2"]  # whole, though under any window
    assert sum(s == "alpaca" for s, _ in chosen) == 1 and sum(s == "se" for s, _ in chosen) == 1  # the rest
    reasons = {(d.origin.source, d.origin.row): d.reason.split(":")[0] for d in dropped}
    assert reasons[("lima", "9")] == "duplicate_prompt"
    assert "response_too_short" not in {r for (s, _), r in reasons.items() if s == "alpaca"}  # its own 3 chars
    assert result.rules["lima"].startswith("curated: chosen by people")
    assert result.rules["alpaca"] == "lima: response >= 3 chars"  # alpaca_json has no window: only its own minimum
    assert result.rules["se"].startswith("lima: response 20-400 chars; Stack Exchange: score >= 10")


def test_each_format_has_its_own_window_and_an_authored_format_has_none():
    long = "Knead the dough for ten minutes. " * 40  # 1,320 characters
    examples = [
        ex(long, score=20, row=1, prompt="se long"),
        ex(ANSWERS[1], score=20, row=2, prompt="se short"),  # under Stack Exchange's 200
        ex(ANSWERS[3], source="wiki", fmt="wikihow_csv", row=1, prompt="wiki short"),  # under wikiHow's 100
        ex("Ok.", source="alpaca", fmt="alpaca_json", row=1, prompt="alpaca short", score=-5),  # authored: kept
        ex(long, source="alpaca", fmt="alpaca_json", row=2, prompt="alpaca long"),
    ]
    windows = {"stackexchange_xml": (200, 4096), "wikihow_csv": (100, 1000), "writingprompts_csv": None}
    spec = curate_spec(budget=10, response_chars=windows, diversity="none")
    sources = [
        source("se", "stackexchange_xml", "se.xml", "train", quota=0, curated=False),
        source("wiki", "wikihow_csv", "w.csv", "train", quota=0, curated=False),
        source("alpaca", "alpaca_json", "a.json", "train", quota=0, curated=False),
    ]
    result, dropped = funnel(examples, [], spec, quotas={}, rules=source_rules(spec, sources))
    kept = {(e.origin.source, e.origin.row) for e in result.selected}
    assert kept == {("se", "1"), ("alpaca", "1"), ("alpaca", "2")}
    assert {(d.origin.source, d.origin.row, d.reason) for d in dropped} == {
        ("se", "2", "response_too_short"),
        ("wiki", "1", "response_too_short"),
    }
    assert result.rules == {
        "alpaca": "lima: no length window",  # and no score rule: score -5 is Stack Exchange's business only
        "se": "lima: response 200-4096 chars; Stack Exchange: score >= 10, impersonal, no reference to other answers",
        "wiki": "lima: response 100-1000 chars",
    }


def test_a_test_prompt_inside_a_training_answer_is_caught():
    test = Prompt(
        "Write a short poem about a lighthouse keeper who has never once seen the sea at night",
        "test",
        Origin("test_prompts", "data/test.jsonl", "7"),
    )
    leaked = ex(
        "Sure. WRITE a short poem about a lighthouse keeper, who has never once seen the sea at night: ...",
        source="hand",
        row=2,
        prompt="p2",
    )
    result, dropped = run(
        [ex("A clean answer about something else.", source="hand", row=1, prompt="p1"), leaked], [test]
    )
    (contaminated,) = dropped
    assert contaminated.reason == f"contaminated:{test.id}" and contaminated.origin.row == "2"
    assert "test prompt" in contaminated.detail and "data/hand.xml row 2" in contaminated.detail


def test_near_duplicates_are_dropped_after_exact_dedup():
    text = " ".join(f"w{i}" for i in range(100))
    near = text.replace("w50 ", "changed ")  # 5 of 96 shingles differ: Jaccard 91 / 101
    result, dropped = run(
        [ex(text, source="hand", row=1, prompt="p1"), ex(near, source="hand", row=2, prompt="p2")],
        quotas={},
        near_dup={"threshold": 0.8},
    )
    assert [d.reason.split(":")[0] for d in dropped] == ["near_duplicate"]


def test_wikihow_rewrite_changes_the_text_and_keeps_the_trace():
    assert rewrite_this_article("This article shows X.") == "The following answer shows X."
    wiki = ex("1. **This article shows how to brew.** Boil water.", source="wiki", fmt="wikihow_csv")
    new = rewrite(wiki, se_prompt="title_body")
    assert new.response.startswith("1. **The following answer shows how to brew.**")
    assert new.id != wiki.id and new.meta["rewritten_from"] == wiki.id and new.meta["rewrites"] == ["this_article"]
    assert rewrite(ex(source="hand"), se_prompt="title_body") == ex(source="hand")  # untouched: same record


def test_se_prompt_title_only():
    se = ex(prompt="Why is the sky blue?\n\nI looked up and wondered.", title="Why is the sky blue?", score=11)
    result, _ = run([se], quotas={}, se_prompt="title")
    assert result.selected[0].prompt == "Why is the sky blue?" and result.rewritten == {"se_prompt_title": 1}


def test_variants_random_unfiltered_single_source():
    examples = [ex(f"I, me, my: {ANSWERS[i + 1 + (i > 0)]}", row=i, prompt=f"q{i}") for i in range(4)]
    examples += [ex("I, me, my: a copy.", row=9, prompt="q0")]  # an exact duplicate prompt
    examples += [ex(IMPERSONAL, source="hand", row=10, prompt="h")]
    rnd, _ = run(examples, variant="random", budget=3, quotas={})
    assert [s["step"] for s in rnd.funnel] == ["validated", "dedup", "decontam", "near_dup", "selected"]
    assert rnd.dropped_by_reason() == {"duplicate_prompt": 1, "over_budget": 2}  # no quality filter ran
    unf, _ = run(examples, variant="unfiltered", budget=10, quotas={})
    assert len(unf.selected) == 5 and unf.dropped_by_reason() == {"duplicate_prompt": 1}
    single, _ = run(examples, variant="single_source", single_source="hand", budget=10, quotas={})
    assert [e.origin.source for e in single.selected] == ["hand"]
    assert single.dropped_by_reason()["other_source"] == 5


def test_embeddings_drive_selection_and_the_diversity_measure():
    examples = [
        ex(f"An answer about {t}, number {k}.", source="hand", row=10 * i + k, prompt=f"{t} {k}?")
        for i, t in enumerate(TOPICS)
        for k in range(4)
    ]

    def embed(texts: list[str]) -> np.ndarray:  # one direction per topic: a stand-in for the real model
        vecs = np.array([[1.0 if t in text else 0.0 for t in TOPICS] for text in texts]) + 0.01
        return vecs / np.linalg.norm(vecs, axis=1, keepdims=True)

    result, _ = run(examples, budget=len(TOPICS), quotas={}, embed=embed)
    topics = {next(t for t in TOPICS if t in e.prompt) for e in result.selected}
    assert topics == set(TOPICS)  # farthest-first takes one of each topic
    assert result.diversity is not None and set(result.diversity) >= {"selected", "random"}


def test_batches_change_nothing_but_the_order_of_the_quarantine():
    """The stage streams shards: dedup, near-duplicates and decontamination reach across batches, and the result is
    the one of a single batch, whatever the batch size."""
    text = " ".join(f"w{i}" for i in range(100))
    examples = [
        ex(ANSWERS[1], score=20, row=1, prompt="p1"),
        ex(text, source="hand", row=2, prompt="p2"),
        ex("I did it like this, works.", score=20, row=3, prompt="p3"),  # first person
        ex(ANSWERS[3], score=20, row=4, prompt="P1 "),  # duplicate prompt of row 1, two batches later
        ex(text.replace("w50 ", "changed "), source="hand", row=5, prompt="p5"),  # near-duplicate of row 2
        ex(ANSWERS[4], score=20, row=6, prompt="p6"),
    ]
    whole, whole_dropped = run(examples, quotas={}, budget=10)
    for batch in (1, 2, 4):
        result, dropped = run(examples, quotas={}, budget=10, batch=batch)
        assert result.selected == whole.selected and result.funnel == whole.funnel
        assert sorted(d.detail for d in dropped) == sorted(d.detail for d in whole_dropped)
    reasons = {d.origin.row: d.reason for d in whole_dropped}
    assert reasons == {
        "3": "first_person",
        "4": f"duplicate_prompt:{examples[0].id}",
        "5": f"near_duplicate:{examples[1].id}",
    }


def test_a_chain_of_near_copies_is_one_group_that_keeps_its_earliest():
    """Union-find: c is a near-copy of b, b of a, though c is further from a; all of them are one group."""
    words = [f"w{i}" for i in range(100)]
    a = " ".join(words)
    b = " ".join(words[:40] + ["x1", "x2"] + words[42:])
    c = " ".join(words[:40] + ["x1", "x2"] + words[42:70] + ["y1", "y2"] + words[72:])
    chain = [ex(t, source="hand", row=i, prompt=f"q{i}") for i, t in enumerate([c, a, b])]  # a group in any order
    result, dropped = run(chain, quotas={}, budget=10, near_dup={"threshold": 0.85})
    assert result.selected == [chain[0]]
    assert {d.reason for d in dropped} == {f"near_duplicate:{chain[0].id}"}
    assert any("estimated Jaccard" in d.detail and "in its group" in d.detail for d in dropped)
