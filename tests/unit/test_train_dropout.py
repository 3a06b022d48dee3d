"""dropout.py: LIMA's residual dropout, linear over depth, train mode only, no weights, under LoRA too."""

from __future__ import annotations

import pytest

from lessismore.train.dropout import apply_residual_dropout, decoder_layers, layer_rates, remove_residual_dropout


def _model(layers: int = 4):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=64,
    )
    return LlamaForCausalLM(config)


def _logits(model, seed: int | None = None):
    import torch

    if seed is not None:
        torch.manual_seed(seed)
    ids = torch.arange(1, 13).reshape(2, 6)
    with torch.no_grad():
        return model(input_ids=ids).logits


def _hooks(layer) -> int:
    return len(layer.self_attn._forward_hooks) + len(layer.mlp._forward_hooks)


def test_rates_rise_linearly_from_the_bottom_layer():
    model = _model(layers=4)
    rates = apply_residual_dropout(model, 0.3)
    assert rates == pytest.approx([0.0, 0.1, 0.2, 0.3])
    assert [_hooks(layer) for layer in decoder_layers(model)] == [0, 2, 2, 2]  # rate 0: no hook at all
    assert apply_residual_dropout(model, 0.2) == pytest.approx([0.0, 0.2 / 3, 0.4 / 3, 0.2])
    assert [_hooks(layer) for layer in decoder_layers(model)] == [0, 2, 2, 2]  # replaced, not stacked
    remove_residual_dropout(model)
    assert [_hooks(layer) for layer in decoder_layers(model)] == [0, 0, 0, 0]
    with pytest.raises(ValueError, match="residual_dropout"):
        layer_rates(4, 1.0)


def test_eval_is_unchanged_and_train_drops_reproducibly():
    import torch

    model = _model().train()
    plain_train, plain_eval = _logits(model, seed=1), _logits(model.eval())
    apply_residual_dropout(model, 0.3)
    assert torch.equal(_logits(model.eval()), plain_eval)  # eval / generation: identity
    model.train()
    dropped = _logits(model, seed=1)
    assert not torch.allclose(dropped, plain_train)
    assert torch.equal(_logits(model, seed=1), dropped)  # same seed, same masks
    assert not torch.equal(_logits(model, seed=2), dropped)


def test_zero_is_a_no_op_bit_for_bit():
    import torch

    model = _model().train()
    before = _logits(model, seed=3)
    assert apply_residual_dropout(model, 0.0) == [0.0] * 4
    assert torch.equal(_logits(model, seed=3), before)


def test_no_weights_are_added_or_saved(tmp_path):
    import torch
    from transformers import LlamaForCausalLM

    model = _model()
    keys = set(model.state_dict())
    apply_residual_dropout(model, 0.3)
    assert set(model.state_dict()) == keys
    model.save_pretrained(tmp_path)
    reloaded = LlamaForCausalLM.from_pretrained(tmp_path)
    assert set(reloaded.state_dict()) == keys
    assert all(_hooks(layer) == 0 for layer in decoder_layers(reloaded))  # a training-time behaviour only
    assert torch.equal(_logits(reloaded.eval()), _logits(model.eval()))


@pytest.mark.parametrize("order", ["dropout_then_lora", "lora_then_dropout"])
def test_works_under_peft_lora(order):
    import torch
    from peft import LoraConfig, get_peft_model

    model = _model()
    lora = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    if order == "dropout_then_lora":
        apply_residual_dropout(model, 0.3)
        model = get_peft_model(model, lora)
    else:
        model = get_peft_model(model, lora)
        assert apply_residual_dropout(model, 0.3) == pytest.approx([0.0, 0.1, 0.2, 0.3])
    assert [_hooks(layer) for layer in decoder_layers(model)] == [0, 2, 2, 2]
    plain = _logits(model.eval())
    model.train()
    dropped = _logits(model, seed=1)
    assert not torch.allclose(dropped, plain)
    ids = torch.arange(1, 13).reshape(2, 6)
    model(input_ids=ids, labels=ids).loss.backward()  # gradients flow through the dropped sublayers
    assert any(p.grad is not None for n, p in model.named_parameters() if "lora_" in n)


def test_a_model_without_decoder_layers_is_refused():
    import torch

    with pytest.raises(ValueError, match="residual_dropout: 0"):
        apply_residual_dropout(torch.nn.Sequential(torch.nn.Linear(2, 2)), 0.3)


def test_gradient_checkpointing_replays_the_same_masks():
    import torch

    model = _model().train()
    apply_residual_dropout(model, 0.3)
    ids = torch.arange(1, 13).reshape(2, 6)
    grads = []
    for checkpointing in (False, True):
        if checkpointing:
            model.activation_checkpointing_enable()
        model.zero_grad()
        torch.manual_seed(5)
        model(input_ids=ids, labels=ids, use_cache=False).loss.backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    assert torch.allclose(grads[0], grads[1], atol=1e-6)
