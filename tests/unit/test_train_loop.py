"""loop.py: the step plan, LIMA's linear no-warmup schedule, exact gradient accumulation, the DVCLive log, saving."""

from __future__ import annotations

import json

import pytest

from lessismore.config import ConfigError, parse_params, read_yaml
from lessismore.models import save_model
from lessismore.records import Example, Message, Origin
from lessismore.train.loop import plan_steps
from lessismore.train.steplog import read_steps
from tests.specs import REPO, run_train

ORIGIN = Origin(source="test", file="test_train_loop.py", row="0")


def _example(question: str, answer: str) -> Example:
    return Example(messages=(Message("user", question), Message("assistant", answer)), origin=ORIGIN)


EXAMPLES = [
    _example("How do I fix this?", "Here is the answer, step by step."),
    _example("What is first?", "The first example, because."),
    _example("Why?", "Therefore the quick brown fox jumps over the lazy dog."),
    _example("Give me a list.", "first second third"),
]


def _load(model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(model_dir), AutoTokenizer.from_pretrained(model_dir)


def test_plan_covers_every_example_once_per_epoch_and_caps_at_max_steps():
    lengths = [5, 50, 7, 30, 9, 11, 3]
    plan = plan_steps(lengths, batch_size=2, grad_accum=2, epochs=2, max_steps=0, seed=1)
    assert len(plan) == 4  # ceil(7 / 4) optimizer steps per epoch, the last one short
    for epoch in (0, 1):
        seen = [i for _, micro in plan[2 * epoch : 2 * epoch + 2] for mb in micro for i in mb]
        assert sorted(seen) == list(range(7))
    assert [e for e, _ in plan] == [round(4 / 7, 4), 1.0, round(1 + 4 / 7, 4), 2.0]
    for _, micro in plan:  # micro-batches are cut from the step's examples sorted by length: less padding
        flat = [lengths[i] for mb in micro for i in mb]
        assert flat == sorted(flat)
    assert plan_steps(lengths, 2, 2, 2, max_steps=3, seed=1) == plan[:3]
    assert plan_steps(lengths, 2, 2, 2, 0, seed=2) != plan  # the shuffle follows the seed


def test_loss_decreases_and_lr_decays_linearly_without_warmup(tiny_model_dir, tmp_path):
    model, tokenizer = _load(tiny_model_dir)
    log, perf = tmp_path / "logs" / "train", tmp_path / "logs" / "train_perf"
    _, summary = run_train(
        model,
        tokenizer,
        [EXAMPLES[0]] * 8,
        max_tokens=128,
        method="full",
        epochs=6,
        batch_size=2,
        grad_accum=2,
        lr=3e-3,
        lr_end=3e-4,
        log_dir=log,
        perf_dir=perf,
    )
    rows, problems = read_steps(log, perf)
    assert problems == [] and set(rows[0]) == {
        "step",
        "loss",
        "lr",
        "epoch",
        "tokens",
        *("tokens_per_s", "seconds", "peak_mem_mb"),
    }
    assert json.loads((log / "metrics.json").read_text())["step"] == 12  # DVCLive's latest values, for dvc exp show
    assert len(rows) == summary["steps"] == 12
    assert [int(r["step"]) for r in rows] == list(range(1, 13))
    lrs = [float(r["lr"]) for r in rows]
    assert lrs[0] == pytest.approx(3e-3) and lrs[-1] == pytest.approx(3e-4)  # no warmup: full rate at step 1
    steps = [b - a for a, b in zip(lrs[:-1], lrs[1:], strict=True)]
    assert steps == pytest.approx([-(3e-3 - 3e-4) / 11] * 11, rel=1e-4)  # linear: equal decrements
    losses = [float(r["loss"]) for r in rows]
    assert losses[-1] < 0.8 * losses[0] and losses[-1] < min(losses[:3])
    assert summary["final_loss"] == pytest.approx(losses[-1], rel=1e-5)
    assert all(r["tokens"] > 0 and r["tokens_per_s"] > 0 and r["peak_mem_mb"] > 0 for r in rows)


def test_gradient_accumulation_equals_the_big_batch(tiny_model_dir):
    """The loss is normalised by the whole step's response tokens, so 2 x 2 accumulated == one batch of 4."""
    import torch

    weights = []
    for batch_size, grad_accum in ((4, 1), (2, 2), (1, 4)):
        model, tokenizer = _load(tiny_model_dir)
        # the plain loss: the chunked one reassociates sums, and AdamW's first steps (about lr x the gradient's
        # sign) blow that float noise up past 1e-5 on weights whose gradients are near zero (test_train_packing
        # checks the chunked loss's own gradients against the plain ones)
        kw = dict(max_tokens=128, method="full", epochs=1, lr=1e-2, lr_end=1e-2, loss_chunk=0)
        model, _ = run_train(model, tokenizer, EXAMPLES, batch_size=batch_size, grad_accum=grad_accum, **kw)
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.allclose(weights[0], weights[1], atol=1e-5) and torch.allclose(weights[0], weights[2], atol=1e-5)


def test_examples_without_response_tokens_are_counted_not_trained(tiny_model_dir):
    model, tokenizer = _load(tiny_model_dir)
    long_prompt = _example("why " * 100, "because")
    _, summary = run_train(model, tokenizer, [long_prompt, EXAMPLES[0]], max_tokens=64, epochs=1)
    assert summary["examples"] == 2 and summary["skipped_no_response_tokens"] == 1
    with pytest.raises(ValueError, match="max_tokens"):
        run_train(model, tokenizer, [long_prompt], max_tokens=64)


def test_lora_trains_and_saves_only_an_adapter(tiny_model_dir, tmp_path):
    model, tokenizer = _load(tiny_model_dir)
    model, summary = run_train(
        model,
        tokenizer,
        EXAMPLES,
        max_tokens=128,
        method="lora",
        lora_r=4,
        lora_alpha=8,
        lora_dropout=0.0,
        lora_targets=("v_proj", "q_proj"),
    )
    assert 0 < summary["trainable_params"] < summary["total_params"] / 10 and summary["method"] == "lora"
    meta = save_model(model, tokenizer, tmp_path / "final", {"method": "lora", "base": str(tiny_model_dir)})
    files = {p.name for p in (tmp_path / "final").iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "lessismore.json"} <= files
    assert not files & {"model.safetensors", "config.json"}  # no copy of the base weights
    assert json.loads((tmp_path / "final" / "lessismore.json").read_text()) == meta
    assert len(meta["checkpoint"]) == 16
    # peft writes target_modules in set order, which changes between runs; the saved config is canonical
    adapter = json.loads((tmp_path / "final" / "adapter_config.json").read_text())
    assert adapter["target_modules"] == ["q_proj", "v_proj"]


def test_full_fine_tune_saves_the_whole_model(tiny_model_dir, tmp_path):
    model, tokenizer = _load(tiny_model_dir)
    model, summary = run_train(model, tokenizer, EXAMPLES, max_tokens=128, method="full", max_steps=1)
    assert summary["trainable_params"] == summary["total_params"] and summary["steps"] == 1
    save_model(model, tokenizer, tmp_path / "final", {"method": "full", "base": str(tiny_model_dir)})
    files = {p.name for p in (tmp_path / "final").iterdir()}
    assert {"model.safetensors", "config.json", "lessismore.json"} <= files and "adapter_config.json" not in files


def test_unknown_method_and_precision_are_refused():
    """params are typed: an unknown method or precision never reaches the loop."""
    data = read_yaml(REPO / "params.yaml")
    data["train"] |= {"method": "qlora", "precision": "fp8"}
    with pytest.raises(ConfigError) as err:
        parse_params(data)
    assert "train.method: 'qlora' is not one of ['lora', 'full']" in str(err.value)
    assert "train.precision: 'fp8' is not one of ['fp32', 'bf16', 'auto']" in str(err.value)


def test_the_thread_count_does_not_change_a_bit_of_the_weights(tiny_model_dir):
    """Why train does not pin threads (distributed.deterministic_torch): a 16-core worker trains the same weights
    as the 2-core demo machine, only faster."""
    import torch

    before = torch.get_num_threads()
    weights = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            model, tokenizer = _load(tiny_model_dir)
            kw = dict(max_tokens=128, method="full", epochs=1, lr=1e-2, lr_end=1e-3, batch_size=2, grad_accum=2)
            model, _ = run_train(model, tokenizer, EXAMPLES, **kw)
            weights.append({k: v.detach().clone() for k, v in model.state_dict().items()})
            assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.set_num_threads(before)
    assert weights[0].keys() == weights[1].keys()
    assert [k for k in weights[0] if not torch.equal(weights[0][k], weights[1][k])] == []
