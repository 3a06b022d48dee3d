"""scores.ifd: the instruction-following difficulty from the base model's losses, checked against the model's own
loss, batched as one by one, in input order."""

from __future__ import annotations

import pytest

from lessismore.records import Example, Message, Origin
from lessismore.scores.ifd import ifd_scores, response_only
from lessismore.train.collate import encode_example


def ex(prompt: str, answer: str, row: int = 0) -> Example:
    return Example((Message("user", prompt), Message("assistant", answer)), Origin("s", "s.jsonl", str(row)))


EXAMPLES = [
    ex("How do I boil an egg?", "Put it in boiling water for nine minutes, then cool it in cold water.", 0),
    ex("Name a colour.", "Blue.", 1),
    ex("Explain recursion " * 8, "A function that calls itself on a smaller input until a base case. " * 3, 2),
    Example((Message("user", "No answer."),), Origin("s", "s.jsonl", "3")),
]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_model_dir), AutoTokenizer.from_pretrained(tiny_model_dir)


def test_the_losses_are_the_model_s_own_training_loss(tiny):
    import torch

    model, tok = tiny
    scores = ifd_scores(EXAMPLES, model, tok, max_tokens=1024, batch_size=4)
    for example, score in zip(EXAMPLES[:3], scores[:3], strict=True):
        for messages, mean in ((example.messages, score.with_prompt), (response_only(example), score.without_prompt)):
            row = encode_example(messages, tok, 1024)
            with torch.no_grad():
                own = model(input_ids=torch.tensor([row["input_ids"]]), labels=torch.tensor([row["labels"]])).loss
            assert mean == pytest.approx(float(own), abs=1e-5)
        assert score.ifd == pytest.approx(score.with_prompt / score.without_prompt)
        assert score.tokens == score.tokens_alone > 0  # the same response tokens, with and without the prompt


def test_batches_of_any_size_give_the_same_scores_in_input_order(tiny):
    model, tok = tiny
    one = ifd_scores(EXAMPLES, model, tok, max_tokens=1024, batch_size=1)
    many = ifd_scores(list(reversed(EXAMPLES)), model, tok, max_tokens=1024, batch_size=3)[::-1]
    for a, b in zip(one[:3], many[:3], strict=True):
        assert a.with_prompt == pytest.approx(b.with_prompt, abs=1e-5)
        assert a.without_prompt == pytest.approx(b.without_prompt, abs=1e-5)
    assert len({round(s.with_prompt, 4) for s in one[:3]}) == 3  # distinct rows, not one value copied


def test_a_row_without_a_response_has_no_score_and_the_prompt_is_emptied(tiny):
    model, tok = tiny
    assert ifd_scores(EXAMPLES[3:], model, tok, max_tokens=1024, batch_size=2) == [None]
    system = Example((Message("system", "Be brief."), *EXAMPLES[1].messages), EXAMPLES[1].origin)
    expected = (Message("system", ""), Message("user", ""), Message("assistant", "Blue."))
    assert response_only(system) == expected


def test_a_cut_inside_the_response_shows_in_the_token_counts(tiny):
    model, tok = tiny
    (long,) = ifd_scores(EXAMPLES[2:3], model, tok, max_tokens=200, batch_size=1)
    assert 0 < long.tokens < long.tokens_alone  # the prompt in front leaves fewer response tokens under the cut
