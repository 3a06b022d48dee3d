"""LIMA's residual dropout (section 3): dropout on each sublayer's output before it joins the residual stream.

The rate rises linearly with depth, 0.0 at the bottom layer to `top` at the last (LIMA: 0.3, 0.2 for small models):
layer i of n drops with probability top * i / (n - 1). The train stage calls `apply_residual_dropout` once on the
model (plain or peft-wrapped) before `train()`.

Forward hooks on each decoder layer's `self_attn` and `mlp` modules, not module wrappers: a Llama-style layer adds
those modules' outputs to the residual (`h = h + attn(norm(h))`, `h = h + mlp(norm(h))`), so dropping their outputs
is exactly residual dropout, and a hook adds no parameter and renames no weight. The state dict, save_pretrained,
peft adapters (which wrap the Linear layers inside, leaving these modules and their hooks in place) and loading
are untouched: dropout is a training-time behaviour, not part of the checkpoint. The hooks act only in train mode
(`module.training`), so eval and generation are unchanged, and gradient checkpointing replays the same masks
(torch.utils.checkpoint restores the RNG state).
"""

from __future__ import annotations

from typing import Any

from lessismore.errors import BadValue

_HANDLES = "_lessismore_residual_dropout"  # attribute on the base model holding the hook handles


def layer_rates(n_layers: int, top: float) -> list[float]:
    """Dropout rate per layer, bottom first: linear from 0.0 to `top`; a single layer gets `top`.

    >>> layer_rates(4, 0.3)
    [0.0, 0.1, 0.2, 0.3]
    >>> layer_rates(1, 0.2)
    [0.2]
    """
    if not 0.0 <= top < 1.0:
        raise BadValue(f"train.residual_dropout {top}: a probability in [0, 1) (LIMA: 0.3, 0.2 for small models)")
    if n_layers <= 1:
        return [top] * n_layers
    return [round(top * i / (n_layers - 1), 12) for i in range(n_layers)]


def decoder_layers(model: Any) -> list[Any]:
    """The decoder layers (bottom first) of a causal LM, through a peft wrapper: the first ModuleList of blocks
    that each have `self_attn` and `mlp` (Llama, Mistral, Qwen, SmolLM...)."""
    import torch

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    for module in base.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) > 0:
            if all(hasattr(block, "self_attn") and hasattr(block, "mlp") for block in module):
                return list(module)
    raise BadValue(
        f"{type(base).__name__}: no decoder layers with self_attn and mlp found; residual dropout supports "
        "Llama-style models; set params train.residual_dropout: 0"
    )


class _SublayerDropout:
    """A forward hook: dropout on a sublayer's output (the first element when it returns a tuple), train mode only."""

    def __init__(self, p: float):
        self.p = p

    def __call__(self, module: Any, args: Any, output: Any) -> Any:
        import torch.nn.functional as F

        if not module.training:
            return None  # None keeps the output as it is
        if isinstance(output, tuple):
            return (F.dropout(output[0], self.p, training=True), *output[1:])
        return F.dropout(output, self.p, training=True)


def remove_residual_dropout(model: Any) -> None:
    """Take the hooks off again (a no-op when there are none)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    for handle in getattr(base, _HANDLES, []):
        handle.remove()
    setattr(base, _HANDLES, [])


def apply_residual_dropout(model: Any, top: float) -> list[float]:
    """Hook residual dropout onto every decoder layer; returns the per-layer rates, bottom first.

    Calling it again replaces the earlier hooks. Layers whose rate is 0 get no hook, so top=0 changes nothing.
    """
    layers = decoder_layers(model)
    rates = layer_rates(len(layers), top)
    remove_residual_dropout(model)
    handles = []
    for layer, rate in zip(layers, rates, strict=True):
        if rate > 0:
            handles += [sub.register_forward_hook(_SublayerDropout(rate)) for sub in (layer.self_attn, layer.mlp)]
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    setattr(base, _HANDLES, handles)
    return rates
