"""Human judging without the web page: items, seeded queues and sides, the insert-only store and its export."""

from __future__ import annotations

import sqlite3

import pytest

from lessismore.annotate import build_items, candidate_side, queue, seeded_order, store
from lessismore.judge.agreement import pairwise_agreement
from lessismore.judge.outcome import pair_outcomes
from lessismore.records import Judgment, Origin, Prompt, Response, iter_jsonl

DECODING = {"temperature": 0.7, "top_p": 0.9}


def make_data(n_prompts: int = 4, baselines: tuple[str, ...] = ("base", "gpt"), answer: str = "answer"):
    """Test prompts and each model's answers (candidate "ft"): plain records, as generate/ writes them."""
    prompts = [Prompt(f"question {i}?", "test", Origin("t", "prompts.jsonl", str(i))) for i in range(n_prompts)]
    responses = [
        Response(p.id, model, f"sha-{model}", f"{answer} {i} from {model}", DECODING)
        for i, p in enumerate(prompts)
        for model in ("ft", *baselines)
    ]
    return prompts, responses


def test_items_pair_the_candidate_with_each_baseline_and_grade_every_answer():
    prompts, responses = make_data(3)
    responses = [r for r in responses if not (r.model == "gpt" and r.prompt_id == prompts[0].id)]
    items, unpaired = build_items(prompts, responses, "ft", ["base", "gpt"])
    pairwise = [it for it in items if it.kind == "pairwise"]
    absolute = [it for it in items if it.kind == "absolute"]
    assert (len(pairwise), len(absolute), unpaired) == (5, 8, {"base": 0, "gpt": 1})
    assert all(it.answers[0].model == "ft" for it in pairwise)
    again, _ = build_items(list(reversed(prompts)), list(reversed(responses)), "ft", ["base", "gpt"])
    assert sorted(it.key for it in again) == sorted(it.key for it in items)  # keys are content, not position
    assert len({it.key for it in items}) == len(items)


def test_seeded_order_and_sides_are_reproducible_and_seed_dependent():
    keys = [f"k{i}" for i in range(40)]
    assert seeded_order(keys, 3) == seeded_order(list(reversed(keys)), 3) != seeded_order(keys, 4)
    q1 = queue(keys, "ann", overlap=10, seed=3, roster=["ann", "bob"])
    assert q1 == queue(list(reversed(keys)), "ann", overlap=10, seed=3, roster=["ann", "bob"])
    sides = [candidate_side("ann", k, 3) for k in keys]
    assert sides == [candidate_side("ann", k, 3) for k in keys]
    assert 10 <= sides.count("ab") <= 30  # a fair coin over 40 items
    assert sides != [candidate_side("bob", k, 3) for k in keys]  # per annotator


def test_overlap_goes_to_everyone_and_the_rest_is_split():
    keys = [f"k{i}" for i in range(23)]
    roster = ["ann", "bob", "cy"]
    queues = {n: queue(keys, n, overlap=5, seed=0, roster=roster) for n in roster}
    shared = set(seeded_order(keys, 0)[:5])
    for q in queues.values():
        assert set(q[:5]) == shared  # the overlap comes first
        assert len(q) == len(set(q))
    own = [set(q) - shared for q in queues.values()]
    assert sum(len(o) for o in own) == 18 and set().union(*own) == set(keys) - shared
    assert all(not (a & b) for i, a in enumerate(own) for b in own[i + 1 :])
    assert sorted(len(o) for o in own) == [6, 6, 6]
    # no roster: first come, first served, the overlap still shared
    taken = set(seeded_order(keys, 0)[5:7])
    open_q = queue(keys, "dee", overlap=5, seed=0, taken_by_others=taken | shared)
    assert set(open_q) == set(keys) - taken and set(open_q[:5]) == shared


def test_store_is_insert_only_and_the_export_takes_the_latest(tmp_path):
    prompts, responses = make_data(2, baselines=("base",))
    items, _ = build_items(prompts, responses, "ft", ["base"])
    pair, grade = next(i for i in items if i.kind == "pairwise"), next(i for i in items if i.kind == "absolute")
    db = tmp_path / "h.sqlite"
    store.add_items(db, items)
    store.add_items(db, items)  # idempotent
    store.submit(db, "ann", "pairwise", pair.key, "ab", "a")  # candidate shown as A, A better: win
    store.submit(db, "ann", "pairwise", pair.key, "ab", "b")  # changed mind: loss
    store.submit(db, "bob", "pairwise", pair.key, "ba", "a")  # candidate shown as B, A better: loss
    store.submit(db, "cy", "pairwise", pair.key, "ba", "tie")
    store.submit(db, "ann", "absolute", grade.key, "", "pass")
    with pytest.raises(ValueError, match="not one of"):
        store.submit(db, "ann", "absolute", grade.key, "", "a")
    with sqlite3.connect(db) as conn:
        for sql in ("UPDATE submissions SET label = 'a'", "DELETE FROM submissions"):
            with pytest.raises(sqlite3.DatabaseError, match="insert-only"):
                conn.execute(sql)
        assert conn.execute("SELECT COUNT(*) FROM submissions").fetchone()[0] == 5
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    out = tmp_path / "outputs" / "human_judgments.jsonl"
    assert store.export(db, out) == 4
    rows = {(r["annotator"], r["kind"]): r for r in iter_jsonl(out)}
    assert rows["ann", "pairwise"]["outcome"] == "loss" and rows["ann", "pairwise"]["submissions"] == 2
    assert (rows["bob", "pairwise"]["outcome"], rows["cy", "pairwise"]["outcome"]) == ("loss", "tie")
    assert rows["ann", "pairwise"]["baseline"] == "base"
    assert rows["ann", "pairwise"]["response_candidate"] == pair.answers[0].id
    assert rows["ann", "absolute"]["outcome"] == "pass" and rows["ann", "absolute"]["response"] == grade.answers[0].id


def test_human_labels_are_keyed_like_the_llm_judges(tmp_path):
    prompts, responses = make_data(3)
    items, _ = build_items(prompts, responses, "ft", ["base", "gpt"])
    db, out = tmp_path / "h.sqlite", tmp_path / "human_judgments.jsonl"
    store.add_items(db, items)
    pairs = [it for it in items if it.kind == "pairwise"]
    for it in pairs:
        store.submit(db, "ann", "pairwise", it.key, "ab", "a")  # always the candidate: win
    store.export(db, out)
    humans = store.human_labels(out)
    judgments = []
    for it in pairs:  # an LLM judge that always says "a": win in order "ab", loss in "ba", so a tie per pair
        cand, base = it.answers
        judgments += [
            Judgment(it.prompt.id, "llm", "t", "ab", cand.id, base.id, "ft", base.model, "a"),
            Judgment(it.prompt.id, "llm", "t", "ba", base.id, cand.id, base.model, "ft", "a"),
        ]
    # the labels exactly as judge.summary.agreement_between builds them for an LLM judge
    llm = {f"{o.prompt_id}|{o.baseline}": o.outcome for o in pair_outcomes(judgments, "ft")}
    assert set(humans) == {"ann"} and set(humans["ann"]) == set(llm) and len(llm) == len(pairs) == 6
    a = pairwise_agreement({"ann": humans["ann"], "llm": llm})["ann~llm"]
    assert (a["n"], a["exact"], a["tie_discounted"]) == (6, 0.0, 0.5)  # human: all wins; judge: all ties


def test_writers_in_many_threads_lose_nothing(tmp_path):
    import threading

    prompts, responses = make_data(5, baselines=("base",))
    items, _ = build_items(prompts, responses, "ft", ["base"])
    db = tmp_path / "h.sqlite"
    store.add_items(db, items)
    start = threading.Barrier(8)

    def write(n: int) -> None:
        start.wait()  # all eight begin together, each with its own connection per submission
        for i, it in enumerate(items):
            label = ("a", "b", "tie")[i % 3] if it.kind == "pairwise" else "pass"
            store.submit(db, f"w{n}", it.kind, it.key, "ab" if it.kind == "pairwise" else "", label)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with store.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM submissions").fetchone()[0] == 8 * len(items) == 120
    assert store.export(db, tmp_path / "out.jsonl") == 120


def test_a_claimed_item_has_one_judge_and_a_submission_id_is_recorded_once(tmp_path):
    prompts, responses = make_data(1, baselines=("base",))
    pair = next(i for i in build_items(prompts, responses, "ft", ["base"])[0] if i.kind == "pairwise")
    db = tmp_path / "h.sqlite"
    store.add_items(db, [pair])

    def post(annotator: str, label: str, sid: str) -> str:
        return store.submit(db, annotator, "pairwise", pair.key, "ab", label, sid=sid * 22, claim=True)

    assert post("ann", "a", "s") == "recorded"
    assert post("bob", "b", "t") == "taken"
    assert post("ann", "a", "s") == "replayed"  # a retry of the same form
    assert post("ann", "b", "s") == "reused"  # the same form with another answer
    assert post("ann", "b", "u") == "recorded"  # a changed mind, from a fresh form
    assert [(r["annotator"], r["label"], r["submissions"]) for r in store.latest(db)] == [("ann", "b", 2)]
    assert store.standing(db, "pairwise", "bob") == (set(), {pair.key})
    with sqlite3.connect(db) as conn:
        with pytest.raises(sqlite3.DatabaseError, match="insert-only"):
            conn.execute("DELETE FROM claims")
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
            conn.execute(
                "INSERT INTO submissions (annotator, kind, item, shown, label, time, sid) "
                "SELECT annotator, kind, item, shown, label, time, sid FROM submissions LIMIT 1"
            )


def test_many_threads_claiming_one_item_leave_one_judge(tmp_path):
    import threading

    prompts, responses = make_data(1, baselines=("base",))
    items, _ = build_items(prompts, responses, "ft", ["base"])
    db = tmp_path / "h.sqlite"
    store.add_items(db, items)
    start, outcomes = threading.Barrier(12), []

    def claim(n: int) -> None:
        start.wait()
        outcomes.append(
            store.submit(db, f"w{n}", "absolute", items[-1].key, "", "pass", sid=f"sid-{n:02}" * 3, claim=True)
        )

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["recorded"] + ["taken"] * 11
    assert len(store.latest(db)) == 1


def test_a_database_from_before_claims_is_upgraded_in_place(tmp_path):
    prompts, responses = make_data(1, baselines=("base",))
    items, _ = build_items(prompts, responses, "ft", ["base"])
    db, key = tmp_path / "h.sqlite", items[0].key
    with sqlite3.connect(db) as conn:  # the version-1 schema: no sid column, no claims, user_version 0
        conn.executescript(
            "CREATE TABLE items (key TEXT PRIMARY KEY, kind TEXT NOT NULL, prompt_id TEXT NOT NULL, "
            "models TEXT NOT NULL, responses TEXT NOT NULL);"
            "CREATE TABLE submissions (id INTEGER PRIMARY KEY AUTOINCREMENT, annotator TEXT NOT NULL, "
            "kind TEXT NOT NULL, item TEXT NOT NULL REFERENCES items(key), shown TEXT NOT NULL, "
            "label TEXT NOT NULL, time TEXT NOT NULL);"
        )
        conn.execute("INSERT INTO items VALUES (?, 'pairwise', 'p', '[]', '[]')", (key,))
        for who in ("bob", "ann"):  # judged by two annotators before the claims table existed
            conn.execute("INSERT INTO submissions VALUES (NULL, ?, 'pairwise', ?, 'ab', 'a', 't')", (who, key))
    store.add_items(db, items)
    with store.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION
        assert conn.execute("SELECT item, annotator FROM claims").fetchall() == [(key, "bob")]  # its first judge
    # both may still change their minds; a newcomer may not judge it
    assert store.submit(db, "ann", "pairwise", key, "ab", "b", sid="a" * 22, claim=True) == "recorded"
    assert store.submit(db, "bob", "pairwise", key, "ab", "b", sid="b" * 22, claim=True) == "recorded"
    assert store.submit(db, "cy", "pairwise", key, "ab", "b", sid="c" * 22, claim=True) == "taken"
