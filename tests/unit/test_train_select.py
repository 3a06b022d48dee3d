"""select.py: picking models/finetuned among epoch-end checkpoints (last, dev loss, the judge hook); dev loss."""

from __future__ import annotations

import math

import pytest

from lessismore.generate import GenResult
from lessismore.records import Example, Message, Origin
from lessismore.train.select import dev_loss, dev_loss_scorer, holdout_split, judge_scorer, select_checkpoint

ORIGIN = Origin(source="test", file="test_train_select.py", row="0")
CANDIDATES = [{"epoch": e, "path": f"models/checkpoints/epoch-{e}"} for e in range(1, 9)]
LOSS = {1: 2.0, 2: 1.5, 3: 1.2, 4: 1.1, 5: 1.3, 6: 1.0, 7: 1.0, 8: 0.9}  # 8 is best overall but outside 5-7


def _example(question: str, answer: str) -> Example:
    return Example(messages=(Message("user", question), Message("assistant", answer)), origin=ORIGIN)


EXAMPLES = [
    _example("How do I fix this?", "Here is the answer, step by step."),
    _example("Why?", "Therefore the quick brown fox jumps over the lazy dog."),
    _example("Give me a list.", "first second third"),
]


def _by_epoch(table) -> dict[int, dict]:
    return {row["epoch"]: row for row in table["candidates"]}


def test_dev_loss_picks_the_lowest_in_the_window_and_ties_go_earlier():
    chosen, table = select_checkpoint(CANDIDATES, lambda c: LOSS[c["epoch"]], mode="dev_loss", epochs=[5, 6, 7])
    assert chosen["epoch"] == 6 and table["chosen_epoch"] == 6  # 7 ties it; the earlier epoch wins
    assert table["chosen_path"] == "models/checkpoints/epoch-6" and "lowest" in table["reason"]
    rows = _by_epoch(table)
    assert [e for e, r in rows.items() if r["candidate"]] == [5, 6, 7]
    assert rows[5]["score"] == 1.3 and rows[8]["score"] is None  # outside the window: never scored
    assert [e for e, r in rows.items() if r["chosen"]] == [6]


def test_last_scores_nothing_and_an_empty_window_means_every_epoch():
    def never(candidate):
        raise AssertionError("mode last must not score")

    chosen, table = select_checkpoint(CANDIDATES, never, mode="last", epochs=[5, 6, 7])
    assert chosen["epoch"] == 7 and all(r["score"] is None for r in table["candidates"])
    chosen, _ = select_checkpoint(CANDIDATES, lambda c: LOSS[c["epoch"]], mode="dev_loss", epochs=())
    assert chosen["epoch"] == 8
    chosen, table = select_checkpoint(CANDIDATES[:3], None, mode="last", epochs=[5, 6])  # a short (smoke) run
    assert chosen["epoch"] == 3 and "no checkpoint at select_epochs [5, 6]" in table["reason"]


def test_a_diverged_checkpoint_never_wins():
    losses = {5: math.nan, 6: math.inf, 7: 3.0}
    chosen, table = select_checkpoint(CANDIDATES, lambda c: losses[c["epoch"]], mode="dev_loss", epochs=[5, 6, 7])
    rows = _by_epoch(table)
    assert chosen["epoch"] == 7 and rows[5]["diverged"] and rows[5]["score"] is None  # strict JSON: null
    assert not rows[7]["diverged"] and rows[7]["score"] == 3.0
    with pytest.raises(ValueError, match="non-finite"):
        select_checkpoint(CANDIDATES, lambda c: math.nan, mode="dev_loss", epochs=[5])


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="train.select"):
        select_checkpoint(CANDIDATES, None, mode="perplexity")
    with pytest.raises(ValueError, match="no checkpoint"):
        select_checkpoint([], None, mode="last")
    with pytest.raises(ValueError, match="score function"):
        select_checkpoint(CANDIDATES, None, mode="dev_loss")


class _EchoBackend:
    """A GenerateBackend whose answers are the checkpoint's epoch: a seam for the judge until #5 lands."""

    def __init__(self, candidate):
        self.epoch = candidate["epoch"]

    def generate(self, prompts: list[str]) -> list[GenResult]:
        return [GenResult(text=f"epoch {self.epoch}", new_tokens=2, finish_reason="eot") for _ in prompts]


def test_the_judge_hook_maximises_its_score():
    def judge(prompts, answers) -> float:  # a stand-in for #5: likes epoch 6 best
        assert len(prompts) == len(answers) == 2
        return -abs(int(answers[0].split()[1]) - 6)

    score = judge_scorer(["dev prompt 1", "dev prompt 2"], judge, _EchoBackend)
    chosen, table = select_checkpoint(CANDIDATES, score, mode="judge", epochs=[5, 6, 7, 8])
    assert chosen["epoch"] == 6 and "highest" in table["reason"]


def test_holdout_split_is_seeded_disjoint_and_complete():
    examples = [_example(f"q{i}", f"a{i}") for i in range(20)]
    train, held = holdout_split(examples, 5, seed=0)
    assert len(held) == 5 and len(train) == 15
    assert {e.id for e in train} | {e.id for e in held} == {e.id for e in examples}
    assert holdout_split(examples, 5, seed=0) == (train, held)
    assert holdout_split(examples, 5, seed=1)[1] != held
    assert holdout_split(list(reversed(examples)), 5, seed=0)[1] == list(reversed(held))  # by content, not position
    with pytest.raises(ValueError, match="at least one"):
        holdout_split(examples, 20)


def _load(model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(model_dir), AutoTokenizer.from_pretrained(model_dir)


def test_dev_loss_is_token_weighted_and_leaves_the_mode_alone(tiny_model_dir):
    model, tokenizer = _load(tiny_model_dir)
    model.train()
    whole = dev_loss(model, tokenizer, EXAMPLES, max_tokens=128, batch_size=8)
    assert model.training  # restored after the eval pass
    assert dev_loss(model, tokenizer, EXAMPLES, max_tokens=128, batch_size=1) == pytest.approx(whole, rel=1e-5)
    assert math.log(len(tokenizer)) * 0.8 < whole < math.log(len(tokenizer)) * 1.2  # a random model: ~uniform
    with pytest.raises(ValueError, match="max_tokens"):
        dev_loss(model, tokenizer, [_example("why " * 100, "because")], max_tokens=16)


@pytest.mark.slow
def test_dev_loss_selects_the_checkpoint_that_learned_the_dev_answers(tiny_model_dir, tmp_path):
    from lessismore.models import load_causal_lm
    from tests.specs import run_train

    model, tokenizer = _load(tiny_model_dir)
    kw = dict(max_tokens=128, method="full", epochs=20, lr=5e-3, batch_size=4, grad_accum=1)
    model, _ = run_train(model, tokenizer, EXAMPLES, **kw)
    model.save_pretrained(tmp_path / "epoch-2")
    tokenizer.save_pretrained(tmp_path / "epoch-2")
    candidates = [{"epoch": 1, "path": tiny_model_dir}, {"epoch": 2, "path": tmp_path / "epoch-2"}]
    score = dev_loss_scorer(EXAMPLES, 128, load_causal_lm)
    chosen, table = select_checkpoint(candidates, score, mode="dev_loss", epochs=[1, 2])
    assert chosen["epoch"] == 2
    rows = _by_epoch(table)
    assert rows[2]["score"] < 0.5 * rows[1]["score"]
