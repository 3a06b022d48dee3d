"""generate/: input order, stopping at the end-of-turn token, seeded reruns, checkpoint hashes, adapter loading."""

from __future__ import annotations

import json
import shutil

import pytest

from lessismore.errors import UserError
from lessismore.generate import GenResult
from lessismore.generate.transformers_backend import TransformersBackend
from lessismore.models import checkpoint_hash, load_causal_lm, save_model
from lessismore.records import Example, Message, Origin
from tests.specs import run_train

# a tiny model is fine-tuned to give each of these prompts its own short answer, then close its turn
ANSWERS = {"Hi": "hello", "Why?": "because", "What is first?": "first second third", "Give me a list.": "quick fox"}
PROMPTS = ["Hi", "Tell me a story about the lazy dog and the quick fox, step by step.", "Why?", "What is first?", "ok"]
ORIGIN = Origin(source="test", file="test_generate.py", row="0")


def _backend(model, tokenizer, **overrides) -> TransformersBackend:
    kw = dict(max_new_tokens=12, top_p=0.9, temperature=0.7, repetition_penalty=1.2, seed=7, batch_size=2)
    return TransformersBackend(model, tokenizer, **{**kw, **overrides})


def _short_answer_examples() -> list[Example]:
    return [Example(messages=(Message("user", q), Message("assistant", a)), origin=ORIGIN) for q, a in ANSWERS.items()]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return load_causal_lm(tiny_model_dir)


@pytest.fixture(scope="module")
def trained(tiny_model_dir):
    """The tiny model fine-tuned (full, 120 steps, < 1 s) on ANSWERS: distinct answers, each closed by EOT."""
    model, tokenizer = load_causal_lm(tiny_model_dir)
    kw = dict(max_tokens=64, method="full", epochs=60, batch_size=4, grad_accum=1, lr=5e-3, lr_end=5e-4, seed=0)
    model, _ = run_train(model, tokenizer, _short_answer_examples() * 2, **kw)
    return model, tokenizer


def test_batched_results_come_back_in_input_order(trained):
    model, tokenizer = trained
    prompts = list(ANSWERS) + ["Tell me a story about the lazy dog and the quick fox, step by step."]
    prompts = prompts[::-1]  # longest first in the input, so length-sorting really reorders
    batched = _backend(model, tokenizer, batch_size=2, max_new_tokens=16).generate(prompts)
    assert [r.text for r in batched[1:]] == [ANSWERS[p] for p in prompts[1:]]
    # top_p ~ 0 keeps only the argmax token: an answer must not depend on its batch-mates or on padding
    greedy = dict(top_p=1e-9, repetition_penalty=1.0)
    batched = _backend(model, tokenizer, batch_size=3, **greedy).generate(prompts)
    assert batched == [_backend(model, tokenizer, batch_size=1, **greedy).generate([p])[0] for p in prompts]


def test_a_model_that_learned_to_stop_stops_at_the_end_of_turn(trained):
    model, tokenizer = trained
    results = _backend(model, tokenizer, max_new_tokens=16).generate(list(ANSWERS))
    assert [r.finish_reason for r in results] == ["eot"] * len(ANSWERS)
    n_tokens = [len(tokenizer(a + "<|im_end|>", add_special_tokens=False)["input_ids"]) for a in ANSWERS.values()]
    assert [r.new_tokens for r in results] == n_tokens < [16] * len(ANSWERS)


def test_an_untrained_model_runs_to_the_length_limit(tiny):
    model, tokenizer = tiny
    results = _backend(model, tokenizer, max_new_tokens=6).generate(PROMPTS[:2])
    assert [r.finish_reason for r in results] == ["length", "length"] and {r.new_tokens for r in results} == {6}


def test_result_is_cut_at_the_first_end_of_turn(tiny):
    model, tokenizer = tiny
    backend = _backend(model, tokenizer)
    ok = tokenizer("ok", add_special_tokens=False)["input_ids"]
    row = ok + [backend.eot_id] + ok + [backend.pad_id] * 3
    assert backend._result(row) == GenResult("ok", len(ok) + 1, "eot")
    assert backend._result(ok * 3) == GenResult("okokok", 3 * len(ok), "length")


def test_same_seed_same_texts_other_seed_other_texts(tiny):
    import torch

    model, tokenizer = tiny
    torch.manual_seed(99)
    expected_draw = torch.rand(1)
    torch.manual_seed(99)
    first = _backend(model, tokenizer).generate(PROMPTS)
    assert torch.equal(torch.rand(1), expected_draw)  # the backend's seeding leaves the caller's RNG alone
    assert _backend(model, tokenizer).generate(PROMPTS) == first
    assert [r.text for r in _backend(model, tokenizer, seed=8).generate(PROMPTS)] != [r.text for r in first]


def test_checkpoint_hash_is_stable_path_free_and_content_sensitive(tiny_model_dir, tmp_path):
    h = checkpoint_hash(tiny_model_dir)
    assert len(h) == 16 and int(h, 16) >= 0
    assert checkpoint_hash(tiny_model_dir) == h
    copy = shutil.copytree(tiny_model_dir, tmp_path / "copy")
    assert checkpoint_hash(copy) == h
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # one bit of one weight
    weights.write_bytes(bytes(data))
    assert checkpoint_hash(copy) != h
    with pytest.raises(FileNotFoundError, match="safetensors"):
        checkpoint_hash(tmp_path)


def test_a_lora_adapter_is_loaded_merged_onto_its_base(tiny_model_dir, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base, tokenizer = (
        AutoModelForCausalLM.from_pretrained(tiny_model_dir),
        AutoTokenizer.from_pretrained(tiny_model_dir),
    )
    kw = dict(max_tokens=64, method="lora", lora_r=4, lora_alpha=8, lora_dropout=0.0, lr=5e-2, lr_end=5e-2)
    peft_model, _ = run_train(base, tokenizer, _short_answer_examples(), epochs=2, batch_size=4, grad_accum=1, **kw)
    info = {"method": "lora", "base": str(tiny_model_dir), "base_checkpoint": checkpoint_hash(tiny_model_dir)}
    meta = save_model(peft_model, tokenizer, tmp_path / "final", info)
    assert checkpoint_hash(tmp_path / "final") == meta["checkpoint"] != info["base_checkpoint"]

    merged, _ = load_causal_lm(tmp_path / "final")
    plain, _ = load_causal_lm(tiny_model_dir)
    ids = torch.tensor([tokenizer("How do I fix this?")["input_ids"]])
    with torch.inference_mode():
        want, got, before = peft_model(input_ids=ids).logits, merged(input_ids=ids).logits, plain(input_ids=ids).logits
    assert not hasattr(merged, "peft_config") and not merged.training
    assert torch.allclose(got, want, atol=1e-4) and not torch.allclose(got, before, atol=1e-3)

    meta_path = tmp_path / "final" / "lessismore.json"
    meta_path.write_text(json.dumps({**meta, "base_checkpoint": "0" * 16}))
    with pytest.raises(ValueError, match="dvc repro train"):
        load_causal_lm(tmp_path / "final")


def test_batches_stream_out_as_they_finish_and_cover_every_prompt_once(tiny):
    model, tokenizer = tiny
    batches = list(_backend(model, tokenizer, batch_size=2, max_new_tokens=3).generate_batches(PROMPTS))
    assert [len(idx) for idx, _ in batches] == [2, 2, 1]
    assert sorted(i for idx, _ in batches for i in idx) == list(range(len(PROMPTS)))


def test_the_vllm_backend_without_vllm_or_a_gpu_says_how_to_get_them(tiny_model_dir):
    import importlib.util

    import torch

    from lessismore.generate.vllm_backend import VLLMBackend

    if importlib.util.find_spec("vllm") and torch.cuda.is_available():
        pytest.skip("vllm and a GPU are here: see test_vllm_backend_on_a_gpu")
    with pytest.raises(UserError, match=r"lessismore\[vllm\]|CUDA GPU"):
        VLLMBackend(tiny_model_dir, max_new_tokens=4, top_p=0.9, temperature=0.7, repetition_penalty=1.2, seed=1)


@pytest.mark.gpu
@pytest.mark.slow
def test_vllm_backend_on_a_gpu(tiny_model_dir):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU (and the vllm extra: pip install .[vllm])")
    pytest.importorskip("vllm", reason="a GPU is here but not the vllm extra: pip install .[vllm]")
    from lessismore.generate.vllm_backend import VLLMBackend

    backend = VLLMBackend(
        tiny_model_dir,
        max_new_tokens=4,
        top_p=0.9,
        temperature=0.7,
        repetition_penalty=1.2,
        seed=1,
        batch_size=2,
        gpu_memory_utilization=0.3,
    )
    results = backend.generate(PROMPTS)
    assert len(results) == len(PROMPTS) and all(0 < r.new_tokens <= 4 for r in results)
    assert backend.generate(PROMPTS) == results  # seeded per prompt
