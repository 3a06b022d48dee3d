"""collate.py: responses-only labels (EOT included), system-prompt templates, trimming, right padding."""

from __future__ import annotations

import pytest

from lessismore.records import Message
from lessismore.train.collate import IGNORE_INDEX, Collator, encode_example, end_of_turn_id

# SmolLM2-Instruct's own template: it injects a default system prompt when the conversation has none.
SMOL_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CONVERSATION = (
    Message("system", "Answer briefly."),
    Message("user", "How do I fix this?"),
    Message("assistant", "Here is the answer, step by step."),
    Message("user", "And the second question?"),
    Message("assistant", "The quick brown fox, therefore."),
)


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def _n_tokens(tokenizer, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def _labelled_text(tokenizer, enc) -> str:
    return tokenizer.decode([t for t in enc["labels"] if t != IGNORE_INDEX])


def test_only_assistant_tokens_and_their_eot_are_labelled(tokenizer):
    enc = encode_example(CONVERSATION, tokenizer, max_tokens=4096)
    assistant = [m.content for m in CONVERSATION if m.role == "assistant"]
    expected = sum(_n_tokens(tokenizer, text + "<|im_end|>") for text in assistant)
    labelled = [i for i, t in enumerate(enc["labels"]) if t != IGNORE_INDEX]
    assert len(labelled) == expected
    assert all(enc["labels"][i] == enc["input_ids"][i] for i in labelled)
    assert _labelled_text(tokenizer, enc) == "".join(text + "<|im_end|>" for text in assistant)
    # no system or user text, no turn header, no trailing newline is learned
    eot, start = end_of_turn_id(tokenizer), tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert sum(1 for t in enc["labels"] if t == eot) == 2 < enc["input_ids"].count(eot)
    assert start not in enc["labels"]
    assert enc["labels"][-1] == IGNORE_INDEX  # the template's "\n" after the last <|im_end|>


def test_injected_default_system_prompt_stays_masked(tokenizer):
    tokenizer = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)  # a private copy to change its template
    tokenizer.chat_template = SMOL_TEMPLATE
    messages = [Message("user", "How do I fix this?"), Message("assistant", "Step by step.")]
    enc = encode_example(messages, tokenizer, max_tokens=4096)
    assert "You are a helpful AI assistant" in tokenizer.decode(enc["input_ids"])
    assert _labelled_text(tokenizer, enc) == "Step by step.<|im_end|>"


def test_messages_may_be_plain_dicts(tokenizer):
    as_dicts = [{"role": m.role, "content": m.content} for m in CONVERSATION]
    assert encode_example(as_dicts, tokenizer, 4096) == encode_example(CONVERSATION, tokenizer, 4096)


def test_trimming_keeps_the_first_max_tokens(tokenizer):
    full = encode_example(CONVERSATION, tokenizer, max_tokens=4096)
    trimmed = encode_example(CONVERSATION, tokenizer, max_tokens=20)
    assert len(trimmed["input_ids"]) == len(trimmed["labels"]) == 20 < len(full["input_ids"])
    assert trimmed["input_ids"] == full["input_ids"][:20] and trimmed["labels"] == full["labels"][:20]
    # trimmed inside the prompt: nothing is left to learn (the loop skips and counts such examples)
    assert set(trimmed["labels"]) == {IGNORE_INDEX}
    with pytest.raises(ValueError, match="max_tokens"):
        encode_example(CONVERSATION, tokenizer, max_tokens=0)


def test_a_template_that_is_not_incremental_is_refused(tokenizer):
    tokenizer = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
    # numbers each turn from the end: earlier turns render differently once a turn is added
    tokenizer.chat_template = "{% for m in messages %}{{ loop.revindex }}{{ m['content'] }}<|im_end|>{% endfor %}"
    with pytest.raises(ValueError, match="incremental"):
        encode_example(CONVERSATION, tokenizer, max_tokens=4096)


def test_collator_right_pads_with_ignored_labels(tokenizer):
    short = encode_example(CONVERSATION[1:3], tokenizer, max_tokens=4096)
    long = encode_example(CONVERSATION, tokenizer, max_tokens=4096)
    pad = tokenizer.pad_token_id
    batch = Collator(pad)([short, long])
    n_short, n_long = len(short["input_ids"]), len(long["input_ids"])
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape == (2, n_long)
    assert batch["attention_mask"].sum(1).tolist() == [n_short, n_long]
    assert batch["input_ids"][0, :n_short].tolist() == short["input_ids"]
    assert set(batch["input_ids"][0, n_short:].tolist()) == {pad}
    assert set(batch["labels"][0, n_short:].tolist()) == {IGNORE_INDEX}
    assert batch["labels"][1].tolist() == long["labels"]


@pytest.mark.parametrize("mode", ["template", "new_token"])
def test_labelled_tokens_are_the_assistant_spans_with_the_eot_of_either_mode(tiny_model_dir, mode):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lessismore.train.eot import prepare_eot

    model, tok = AutoModelForCausalLM.from_pretrained(tiny_model_dir), AutoTokenizer.from_pretrained(tiny_model_dir)
    _, tok, eot = prepare_eot(model, tok, mode)
    enc = encode_example(CONVERSATION, tok, max_tokens=4096)
    assistant = [m.content for m in CONVERSATION if m.role == "assistant"]
    labelled = [t for t in enc["labels"] if t != IGNORE_INDEX]
    assert len(labelled) == sum(_n_tokens(tok, text + eot) for text in assistant)
    assert _labelled_text(tok, enc) == "".join(text + eot for text in assistant)
    eot_id = tok.convert_tokens_to_ids(eot)
    assert end_of_turn_id(tok) == eot_id and labelled.count(eot_id) == 2  # each answer's EOT is learned
    assert enc["input_ids"].count(eot_id) == len(CONVERSATION)  # and every utterance ends with it


def test_end_of_turn_follows_the_template_not_a_fixed_name(tokenizer):
    tokenizer = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] + '<|endoftext|>' }}{% endfor %}"
    assert end_of_turn_id(tokenizer) == tokenizer.convert_tokens_to_ids("<|endoftext|>")
    tokenizer.chat_template = "{{ raise_exception('refuses every conversation') }}"
    assert end_of_turn_id(tokenizer) == tokenizer.convert_tokens_to_ids("<|im_end|>")  # the fallback
