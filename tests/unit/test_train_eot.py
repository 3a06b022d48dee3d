"""eot.py: LIMA's end-of-turn token in both modes; a trained tiny model stops at it when generating."""

from __future__ import annotations

import json

import pytest

from lessismore.records import Example, Message, Origin
from lessismore.train.collate import end_of_turn_id
from lessismore.train.eot import NEW_EOT_TOKEN, prepare_eot

ORIGIN = Origin(source="test", file="test_train_eot.py", row="0")
QA = [("How do I fix this?", "Step by step."), ("Why?", "Because the fox.")]


def _load(model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(model_dir), AutoTokenizer.from_pretrained(model_dir)


def test_template_mode_keeps_the_templates_own_end_of_turn(tiny_model_dir):
    model, tokenizer = _load(tiny_model_dir)
    n_vocab, rows = len(tokenizer), model.get_input_embeddings().weight.shape[0]
    model, tokenizer, eot = prepare_eot(model, tokenizer, "template")
    assert eot == "<|im_end|>" and end_of_turn_id(tokenizer) == tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert len(tokenizer) == n_vocab and model.get_input_embeddings().weight.shape[0] == rows
    assert model.generation_config.eos_token_id == end_of_turn_id(tokenizer)


def test_new_token_closes_every_turn_with_a_mean_initialised_row(tiny_model_dir, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tokenizer = _load(tiny_model_dir)
    old = model.get_input_embeddings().weight.detach().clone()
    model, tokenizer, eot = prepare_eot(model, tokenizer, "new_token")
    new_id = tokenizer.convert_tokens_to_ids(NEW_EOT_TOKEN)
    assert eot == NEW_EOT_TOKEN and end_of_turn_id(tokenizer) == new_id == old.shape[0]
    weight = model.get_input_embeddings().weight
    assert weight.shape[0] == old.shape[0] + 1 and torch.equal(weight[:-1], old)  # old rows untouched
    assert torch.allclose(weight[new_id], old.mean(0))  # tied, so the output row is the same tensor
    assert torch.equal(model.get_output_embeddings().weight[new_id], weight[new_id])
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
    assert rendered == f"<|im_start|>user\nhi{NEW_EOT_TOKEN}\n" and "<|im_end|>" not in rendered
    model, tokenizer, _ = prepare_eot(model, tokenizer, "new_token")  # idempotent: a resumed run
    assert len(tokenizer) == new_id + 1 and model.get_input_embeddings().weight.shape[0] == new_id + 1
    # the saved directory carries it: tokenizer, template, config and generation config
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    assert end_of_turn_id(reloaded) == new_id and reloaded.convert_ids_to_tokens(new_id) == NEW_EOT_TOKEN
    assert json.loads((tmp_path / "generation_config.json").read_text())["eos_token_id"] == new_id
    assert AutoModelForCausalLM.from_pretrained(tmp_path).config.eos_token_id == new_id


def test_a_tokenizer_without_template_gets_a_plain_one(tiny_model_dir):
    for mode, want in (("template", "<|im_end|>"), ("new_token", NEW_EOT_TOKEN)):
        model, tokenizer = _load(tiny_model_dir)
        tokenizer.chat_template = None
        _, tokenizer, eot = prepare_eot(model, tokenizer, mode)
        assert eot == want
        rendered = tokenizer.apply_chat_template(
            [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}], tokenize=False
        )
        assert rendered == f"user:\nQ{want}\nassistant:\nA{want}\n"


def test_bad_modes_and_templates_are_refused(tiny_model_dir):
    model, tokenizer = _load(tiny_model_dir)
    with pytest.raises(ValueError, match="new_token"):
        prepare_eot(model, tokenizer, "eos")
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] + eos_token }}{% endfor %}"
    with pytest.raises(ValueError, match="literally"):  # the end of turn comes from a variable: cannot swap it
        prepare_eot(model, tokenizer, "new_token")


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["template", "new_token"])
def test_a_trained_model_stops_at_its_eot(tiny_model_dir, tmp_path, mode):
    """Overfit two answers, save, reload, generate far past their length: each answer ends at the EOT."""
    from lessismore.generate.transformers_backend import TransformersBackend
    from tests.specs import run_train

    model, tokenizer = _load(tiny_model_dir)
    model, tokenizer, eot = prepare_eot(model, tokenizer, mode)
    examples = [Example(messages=(Message("user", q), Message("assistant", a)), origin=ORIGIN) for q, a in QA]
    model, _ = run_train(
        model,
        tokenizer,
        examples,
        max_tokens=64,
        method="full",
        epochs=60,
        batch_size=2,
        lr=1e-2,
        lr_end=1e-3,
        grad_accum=1,
    )
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    model, tokenizer = _load(tmp_path)
    assert tokenizer.convert_ids_to_tokens(end_of_turn_id(tokenizer)) == eot
    backend = TransformersBackend(
        model.eval(), tokenizer, max_new_tokens=48, top_p=1.0, temperature=0.01, repetition_penalty=1.0, seed=0
    )
    results = backend.generate([q for q, _ in QA])
    assert [r.finish_reason for r in results] == ["eot", "eot"]
    assert [r.text for r in results] == [a for _, a in QA]
    assert all(r.new_tokens < 48 for r in results)
