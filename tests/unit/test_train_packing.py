"""Padding-free packing (collate.pack, collate_packed) and the chunked loss (loss.py) against the plain paths."""

from __future__ import annotations

import pytest

from lessismore.records import Example, Message, Origin
from lessismore.train.collate import IGNORE_INDEX, collate, collate_packed, encode_example, pack
from lessismore.train.loss import output_owner, response_loss
from tests.specs import run_train

ORIGIN = Origin(source="test", file="test_train_packing.py", row="0")
EXAMPLES = [
    Example(
        messages=(
            Message("user", "Question " + "why " * (i % 5) + f"{i}?"),
            Message("assistant", f"The answer {i}, because " + "it is so. " * (1 + i % 4)),
        ),
        origin=ORIGIN,
    )
    for i in range(10)
]


def _load(model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(model_dir), AutoTokenizer.from_pretrained(model_dir)


def _token_losses(model, batch):
    """Per position (row, t): the loss of predicting token t + 1, labelled positions only."""
    import torch.nn.functional as F

    inputs = {k: v for k, v in batch.items() if k != "labels"}
    logits = model(**inputs, use_cache=False).logits[:, :-1].float()
    targets = batch["labels"][:, 1:]
    losses = F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=IGNORE_INDEX, reduction="none")
    return losses, targets != IGNORE_INDEX


def test_first_fit_decreasing_fills_bins_without_overflow():
    rows = [{"input_ids": [0] * n} for n in (7, 3, 5, 2, 6, 1, 4)]
    bins = pack(rows, 8)
    assert sorted(i for b in bins for i in b) == list(range(7))  # every row once
    assert all(sum(len(rows[i]["input_ids"]) for i in b) <= 8 for b in bins)
    assert len(bins) == 4  # 28 tokens in bins of 8: the fewest possible
    assert pack(rows, 8) == bins  # deterministic
    assert pack([{"input_ids": [0] * 9}], 8) == [[0]]  # a row over capacity gets its own bin


def test_packed_rows_give_every_example_its_own_losses(tiny_model_dir):
    """The equality the issue asks for: on the same examples, each example's per-token losses in packed rows
    equal its losses alone (and in a right-padded batch) to 1e-5: no example attends to another."""
    import torch

    model, tok = _load(tiny_model_dir)
    model.eval()
    rows = [encode_example(ex.messages, tok, 64) for ex in EXAMPLES]
    bins = pack(rows, 96)
    assert any(len(b) > 1 for b in bins), "the test must pack several examples into a row"
    packed = collate_packed([[rows[i] for i in b] for b in bins], tok.pad_token_id)
    padded = collate(rows, tok.pad_token_id)
    with torch.no_grad():
        p_loss, p_mask = _token_losses(model, packed)
        b_loss, b_mask = _token_losses(model, padded)
        alone = [_token_losses(model, collate([r], tok.pad_token_id)) for r in rows]
    at = {}
    for b, row in enumerate(bins):
        start = 0
        for i in row:
            at[i] = (b, start)
            start += len(rows[i]["input_ids"])
    for i, (a_loss, a_mask) in enumerate(alone):
        n = len(rows[i]["input_ids"])
        b, start = at[i]
        want = a_loss[0][a_mask[0]]
        got = p_loss[b, start : start + n - 1][p_mask[b, start : start + n - 1]]
        assert len(want) > 0 and got.shape == want.shape, i
        assert torch.allclose(got, want, atol=1e-5, rtol=0), (i, (got - want).abs().max())
        assert torch.allclose(b_loss[i][b_mask[i]], want, atol=1e-5, rtol=0), i
    # nothing else is labelled in the packed rows: not the jump from one example into the next, not the padding
    assert int(p_mask.sum()) == sum(int(m.sum()) for _, m in alone)


@pytest.mark.parametrize("method", ["full", "lora", "lora_new_token"])
def test_chunked_loss_equals_the_plain_loss_and_its_gradients(tiny_model_dir, method):
    """Both chunked paths against the full logits: the fused one (a bare output matrix, trained in a full
    fine-tune, frozen under LoRA) and the checkpointed one (peft's trainable rows for a new EOT token)."""
    import torch

    from lessismore.train.loop import apply_lora
    from lessismore.train.loss import _plain_matrix

    rows = [encode_example(ex.messages, _load(tiny_model_dir)[1], 64) for ex in EXAMPLES[:4]]
    results = []
    for chunk in (0, 7):
        model, tok = _load(tiny_model_dir)
        if method != "full":
            torch.manual_seed(0)  # the same adapter init in both runs
            new = [tok.eos_token_id] if method == "lora_new_token" else []
            model = apply_lora(model, r=4, alpha=8, dropout=0.0, targets=["q_proj", "v_proj"], new_tokens=new)
        fused = _plain_matrix(output_owner(model).get_output_embeddings()) is not None
        assert fused == (method != "lora_new_token")
        batch = collate(rows, tok.pad_token_id)
        loss = response_loss(model, output_owner(model), batch, chunk)
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
        assert type(output_owner(model).get_output_embeddings()).__name__ != "Identity"  # the head is back
        results.append((loss.item(), grads))
    (plain, g0), (chunked, g1) = results
    assert chunked == pytest.approx(plain, rel=1e-6)
    assert g0.keys() == g1.keys() and g0
    for name in g0:
        assert torch.allclose(g0[name], g1[name], atol=1e-6, rtol=1e-5), name


def test_a_packed_run_trains_the_same_weights(tiny_model_dir):
    """The optimizer steps of a packed run take the same examples and the same summed loss: the same weights."""
    import torch

    runs = []
    for packing in (False, True):
        model, tok = _load(tiny_model_dir)
        trained, summary = run_train(
            model, tok, EXAMPLES, max_tokens=64, method="full", max_steps=3, lr=1e-2, batch_size=2, packing=packing
        )
        runs.append((trained.state_dict(), summary))
    (w0, s0), (w1, s1) = runs
    assert s0["tokens"] == s1["tokens"] and s0["response_tokens"] == s1["response_tokens"]
    assert s1["final_loss"] == pytest.approx(s0["final_loss"], abs=1e-6)
    # 1% of one step's size (lr): AdamW moves a weight by about lr x its gradient's sign, so where a gradient is
    # near zero (embedding rows of unseen words) float reassociation noise in it moves the weight by up to that
    for name in w0:
        assert torch.allclose(w0[name], w1[name], atol=1e-4, rtol=0), name


@pytest.mark.slow
def test_a_compiled_run_trains_like_the_eager_one(tiny_model_dir):
    """train.compile: torch.compile (inductor) around the same loop: the same losses, to float noise, and the
    returned model is the plain module again (what save_model and the next stages take)."""
    runs = []
    for compile_ in (False, True):
        model, tok = _load(tiny_model_dir)
        kw = dict(max_tokens=64, method="lora", max_steps=2, lr=1e-2, batch_size=2, lora_dropout=0.0)
        trained, summary = run_train(model, tok, EXAMPLES, compile=compile_, **kw)
        runs.append((trained, summary))
    assert runs[1][1]["final_loss"] == pytest.approx(runs[0][1]["final_loss"], rel=1e-4)
    assert type(runs[1][0]).__name__ == type(runs[0][0]).__name__ == "PeftModelForCausalLM"
