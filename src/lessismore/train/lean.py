"""Memory-lean training layers: the same forward and gradient as the model's own, with fewer tensors kept.

Autograd keeps, for the backward, every intermediate an op says it needs. Three of a Llama block's habits cost
more than the math needs (measured with saved-tensor hooks on a LoRA micro-batch of SmolLM2-135M, 4 x 512 tokens,
fp32; benchmarks/RESULTS.md):
- the MLP's `silu(gate) * up` keeps gate, up and silu(gate): silu is one sigmoid from gate, so `_SiluMul` keeps
  gate and up only and recomputes it in the backward (what Liger's SwiGLU kernel does on GPU, here in plain torch);
- RMSNorm as transformers writes it keeps its input, its normalised copy and more: `_RMSNorm` keeps the input
  and one reciprocal RMS a row (the normalised copy is one multiply away);
- LoRA's dropout gives each adapter (q, k and v read the same input) its own dropped copy of that input for the
  adapter's A matrix to keep, plus the mask: `_DroppedA` keeps the shared input once and each adapter's mask as
  bytes, and applies the mask again in the backward.
Each recompute is an elementwise pass over a tensor the backward touches anyway. On that micro-batch the tensors
kept for the backward fall from 3,509 to 2,353 MiB (both counting ~420 MiB of frozen weights the linear layers
keep a reference to), the peak RSS from 4,650 to 3,493 MiB, and the micro-batch takes 17.6 s, not 18-21.
Liger ships these as Triton kernels, GPU only; this project trains on CPUs too, so `lean_layers` swaps these in on
any device, and the model's weights, names and state dict are untouched (module forwards are replaced, and a LoRA
A layer keeps its Parameter under its peft name). `train.lean: false` keeps the model's own layers.
"""

from __future__ import annotations

import types
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["FusedHeadLoss", "lean_layers"]


def _autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The dtype autocast runs matrix multiplies in here, None outside autocast."""
    kind = device.type
    return torch.get_autocast_dtype(kind) if torch.is_autocast_enabled(kind) else None


class _SiluMul(torch.autograd.Function):
    """silu(gate) * up, keeping gate and up (not silu(gate) as well)."""

    @staticmethod
    def forward(ctx: Any, gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(gate, up)
        return F.silu(gate) * up

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        gate, up = ctx.saved_tensors
        sig = torch.sigmoid(gate)
        silu = gate * sig
        d_gate = grad * up * (sig * (1 + gate * (1 - sig)))
        return d_gate, grad * silu


class _RMSNorm(torch.autograd.Function):
    """weight * x / rms(x), in fp32 (or wider) as transformers' LlamaRMSNorm; keeps x and each row's 1 / rms."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
        xf = x.to(torch.promote_types(x.dtype, torch.float32))
        rstd = torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
        ctx.save_for_backward(x, weight, rstd)
        return weight * (xf * rstd).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, None]:
        x, weight, rstd = ctx.saved_tensors
        normed = x.to(rstd.dtype) * rstd
        d_weight = None
        if ctx.needs_input_grad[1]:
            d_weight = (grad * normed.to(x.dtype)).flatten(0, -2).sum(0).to(weight.dtype)
        d_normed = (grad * weight).to(rstd.dtype)
        d_x = rstd * (d_normed - normed * (d_normed * normed).mean(-1, keepdim=True))
        return d_x.to(x.dtype), d_weight, None


class _DroppedA(torch.autograd.Function):
    """LoRA's A(dropout(x)), keeping x (shared by the adapters that read it) and the mask as bytes."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, p: float) -> torch.Tensor:
        dtype = _autocast_dtype(x.device)
        keep = torch.rand_like(x, dtype=torch.float32) >= p
        scale = 1.0 / (1.0 - p)
        ctx.save_for_backward(x, weight, keep)
        ctx.scale, ctx.dtype = scale, dtype
        dropped = x * keep * scale
        if dtype is not None:
            return F.linear(dropped.to(dtype), weight.to(dtype))
        return F.linear(dropped, weight)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, None]:
        x, weight, keep = ctx.saved_tensors
        dtype = ctx.dtype or weight.dtype
        grad = grad.to(dtype)
        d_x = d_weight = None
        if ctx.needs_input_grad[0]:
            d_x = ((grad @ weight.to(dtype)) * keep * ctx.scale).to(x.dtype)
        if ctx.needs_input_grad[1]:
            dropped = (x * keep * ctx.scale).to(dtype)
            d_weight = (grad.flatten(0, -2).T @ dropped.flatten(0, -2)).to(weight.dtype)
        return d_x, d_weight, None


class FusedHeadLoss(torch.autograd.Function):
    """The summed cross-entropy of `hidden @ weight.T` against `targets`, `chunk` rows at a time, each chunk's
    gradients taken in the forward and kept: the hidden states' (rows x width), and the output matrix's where it
    trains (its size). One chunk's logits exist at once (loss.py says why)."""

    @staticmethod
    def forward(ctx: Any, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, chunk: int) -> Any:
        dtype = torch.promote_types(torch.promote_types(hidden.dtype, weight.dtype), torch.float32)
        w = weight.to(dtype)
        d_hidden = torch.empty_like(hidden)
        d_weight = torch.zeros_like(w) if ctx.needs_input_grad[1] else None
        total = torch.zeros((), dtype=dtype, device=hidden.device)
        for start in range(0, len(targets), chunk):
            h, t = hidden[start : start + chunk].to(dtype), targets[start : start + chunk]
            rows = torch.arange(len(t), device=t.device)
            logits = h @ w.T  # the one chunk-by-vocabulary buffer: everything below works in it, in place
            picked = logits[rows, t]
            top = logits.amax(dim=-1, keepdim=True)
            probs = logits.sub_(top).exp_()
            norm = probs.sum(dim=-1, keepdim=True)
            total += (top + norm.log()).sum() - picked.sum()  # log-sum-exp minus the target's logit, per row
            probs.div_(norm)  # softmax
            probs[rows, t] -= 1.0  # now the summed loss's gradient over the logits
            d_hidden[start : start + chunk] = (probs @ w).to(hidden.dtype)
            if d_weight is not None:
                d_weight.addmm_(probs.T, h)
        ctx.save_for_backward(d_hidden, *([] if d_weight is None else [d_weight]))
        ctx.weight_dtype = weight.dtype
        return total

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, None, None]:
        d_hidden, *d_weight = ctx.saved_tensors
        d_w = (d_weight[0] * grad).to(ctx.weight_dtype) if d_weight else None
        return d_hidden * grad.to(d_hidden.dtype), d_w, None, None


def _mlp_forward(self: Any, x: torch.Tensor) -> torch.Tensor:
    return self.down_proj(_SiluMul.apply(self.gate_proj(x), self.up_proj(x)))


def _norm_forward(self: Any, x: torch.Tensor) -> torch.Tensor:
    return _RMSNorm.apply(x, self.weight, self.variance_epsilon)


def _a_forward(self: Any, x: torch.Tensor) -> torch.Tensor:
    if not self.training or self.lean_p == 0.0:
        return F.linear(x, self.weight, self.bias)
    return _DroppedA.apply(x, self.weight, self.lean_p)


def lean_layers(model: Any) -> dict[str, int]:
    """Swap the lean forwards into `model` (plain or peft-wrapped), in place: every SiLU-gated MLP (gate_proj,
    up_proj, down_proj, act_fn SiLU), every Llama-style RMSNorm (weight, variance_epsilon), and every LoRA layer's
    A matrix with its dropout (call after peft wrapped the model). Returns how many of each were swapped."""
    import torch.nn as nn

    counts = {"mlp": 0, "rmsnorm": 0, "lora_a": 0}
    for module in model.modules():
        if all(hasattr(module, a) for a in ("gate_proj", "up_proj", "down_proj", "act_fn")):
            if isinstance(module.act_fn, nn.SiLU) or type(module.act_fn).__name__ == "SiLUActivation":
                module.forward = types.MethodType(_mlp_forward, module)
                counts["mlp"] += 1
        elif type(module).__name__.endswith("RMSNorm") and hasattr(module, "variance_epsilon"):
            if getattr(module, "weight", None) is not None and module.weight.dim() == 1:
                module.forward = types.MethodType(_norm_forward, module)
                counts["rmsnorm"] += 1
        elif hasattr(module, "lora_A") and hasattr(module, "lora_dropout"):
            for name, drop in list(module.lora_dropout.items()):
                a = module.lora_A[name]
                if isinstance(drop, nn.Dropout) and isinstance(a, nn.Linear) and a.bias is None:
                    a.lean_p = drop.p
                    a.forward = types.MethodType(_a_forward, a)
                    module.lora_dropout[name] = nn.Identity()
                    counts["lora_a"] += 1
    return counts
