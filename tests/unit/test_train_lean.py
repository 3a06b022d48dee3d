"""lean.py: the memory-lean MLP, RMSNorm and LoRA-A-with-dropout give the model's own forward and gradient."""

from __future__ import annotations

import copy

import pytest

from lessismore.train.lean import _DroppedA, _RMSNorm, _SiluMul, lean_layers
from lessismore.train.loop import apply_lora


def _load(model_dir):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(model_dir)


def _saved_bytes(fn):
    """Bytes of the distinct storages autograd keeps for the backward while `fn()` runs (its result returned)."""
    import torch

    seen: dict[int, int] = {}

    def pack(t):
        seen.setdefault(t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return out, sum(seen.values())


def test_each_function_matches_autograd_of_the_plain_ops_in_double():
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    gate = torch.randn(3, 5, 8, dtype=torch.float64, requires_grad=True)
    up = torch.randn(3, 5, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(_SiluMul.apply, (gate, up))
    x = torch.randn(2, 4, 6, dtype=torch.float64, requires_grad=True)
    w = torch.randn(6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: _RMSNorm.apply(a, b, 1e-6), (x, w))
    # the Llama RMSNorm's own formula, forward and gradient
    ref = w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6))
    assert torch.allclose(_RMSNorm.apply(x, w, 1e-6), ref)
    # LoRA's A after dropout, with the mask drawn from the same seed as the function draws it
    a = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    torch.manual_seed(7)
    out = _DroppedA.apply(x, a, 0.3)
    torch.manual_seed(7)
    keep = torch.rand_like(x, dtype=torch.float32) >= 0.3
    want = F.linear(x * keep / 0.7, a)
    assert torch.allclose(out, want)
    g = torch.randn_like(out)
    got = torch.autograd.grad(out, (x, a), g)
    exp = torch.autograd.grad(want, (x, a), g)
    assert all(torch.allclose(p, q) for p, q in zip(got, exp, strict=True))
    assert 0 < (~keep).sum() < keep.numel()  # the mask dropped some and kept some


@pytest.mark.parametrize("method", ["lora", "full"])
def test_lean_model_gives_the_same_loss_and_gradients_and_keeps_less(tiny_model_dir, method):
    """A tiny Llama with the lean layers swapped in: the same loss and the same gradient of every trainable
    parameter (to 1e-5) as the model's own layers, with fewer bytes kept for the backward, and the same state dict
    keys (peft's adapter names included)."""
    import torch

    plain = _load(tiny_model_dir)
    if method == "lora":  # dropout 0: the same masks on both sides (dropout's own test is above)
        plain = apply_lora(plain, r=4, alpha=8, dropout=0.0, targets=["q_proj", "v_proj"])
    lean = copy.deepcopy(plain)
    counts = lean_layers(lean)
    n_layers = plain.config.num_hidden_layers
    assert counts["mlp"] == n_layers and counts["rmsnorm"] == 2 * n_layers + 1
    assert list(lean.state_dict()) == list(plain.state_dict())
    ids = torch.randint(5, plain.config.vocab_size, (2, 24), generator=torch.Generator().manual_seed(3))
    losses, grads, kept = [], [], []
    for model in (plain, lean):
        model.train()
        out, saved = _saved_bytes(lambda m=model: m(input_ids=ids, labels=ids, use_cache=False).loss)
        out.backward()
        losses.append(out.item())
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad})
        kept.append(saved)
    assert losses[0] == pytest.approx(losses[1], abs=1e-5)
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for name, g in grads[0].items():
        assert torch.allclose(g, grads[1][name], atol=1e-5, rtol=1e-4), (name, (g - grads[1][name]).abs().max())
    assert kept[1] < kept[0], kept


def test_lora_dropout_moves_into_the_a_layer_and_keeps_one_input_for_q_k_v(tiny_model_dir):
    """With LoRA dropout on q, k and v, the plain path keeps a dropped fp32 copy of the shared input per adapter
    (and its mask); the lean one keeps the input once and a byte mask per adapter. Eval mode drops nothing."""
    import torch

    ids = torch.randint(5, 200, (2, 24), generator=torch.Generator().manual_seed(3))
    kept = {}
    for lean in (False, True):
        for p in (0.0, 0.1):
            model = apply_lora(_load(tiny_model_dir), r=4, alpha=8, dropout=p, targets=["q_proj", "k_proj", "v_proj"])
            plain = copy.deepcopy(model)
            if lean:
                counts = lean_layers(model)
                assert counts["lora_a"] == (3 * model.config.num_hidden_layers if p else 0)
                assert all(not isinstance(m, torch.nn.Dropout) for m in model.modules())
                model.eval(), plain.eval()
                with torch.no_grad():
                    assert torch.equal(model(input_ids=ids).logits, plain(input_ids=ids).logits)
            model.train()
            _, kept[lean, p] = _saved_bytes(lambda m=model: m(input_ids=ids, labels=ids, use_cache=False).loss)
    plain_cost, lean_cost = kept[False, 0.1] - kept[False, 0.0], kept[True, 0.1] - kept[True, 0.0]
    assert 0 < lean_cost * 3 < plain_cost, (lean_cost, plain_cost)
