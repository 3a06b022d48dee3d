"""A model folder of the pipeline: save it, load it for inference, and name it by a content hash.

Used by every stage that touches a model: model (models/base), train (its checkpoints and models/finetuned), generate
and judge (a local judge model). A model folder is either a full model (config.json + *.safetensors: the base, or a
full fine-tune) or a LoRA adapter (adapter_config.json + adapter_model.safetensors) whose lessismore.json names the
base it was trained on; the adapter is merged into that base once at load time, so generation runs at the base
model's speed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from lessismore.errors import BadValue, NotFound

META_FILE = "lessismore.json"  # written by the train stage: method, base, base_checkpoint, checkpoint
_HASHED_CONFIGS = ("config.json", "adapter_config.json")  # what, besides the weights, changes the model's outputs


def read_meta(model_dir: str | Path) -> dict[str, Any]:
    """The directory's lessismore.json, or {} when it has none (e.g. a plain HF model directory)."""
    path = Path(model_dir) / META_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def checkpoint_hash(model_dir: str | Path) -> str:
    """16 hex digits of sha256 over the weight files and config (and the base's hash for an adapter).

    Stable across runs and machines: only file names and bytes go in, never paths or times.
    """
    d = Path(model_dir)
    weights = sorted(d.glob("*.safetensors"))
    if not weights:
        raise NotFound(f"{d}: no *.safetensors weights; run the model/train stage (`dvc repro`) first")
    h = hashlib.sha256()
    for path in weights + [d / name for name in _HASHED_CONFIGS if (d / name).exists()]:
        h.update(path.name.encode() + b"\0")
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):  # 1 MiB chunks: the base is ~0.5 GB
                h.update(chunk)
    base = read_meta(d).get("base_checkpoint")
    if base:  # an adapter means nothing without its base: a different base is a different model
        h.update(b"base\0" + str(base).encode())
    return h.hexdigest()[:16]


def is_adapter(model_dir: str | Path) -> bool:
    return (Path(model_dir) / "adapter_config.json").exists()


def resolve_base(model_dir: str | Path) -> Path:
    """Where an adapter's base lives: lessismore.json's `base` (else peft's record), from the cwd or the repo."""
    d = Path(model_dir)
    base = read_meta(d).get("base")
    if not base:
        base = json.loads((d / "adapter_config.json").read_text(encoding="utf-8")).get("base_model_name_or_path")
    if not base:
        raise BadValue(f'{d}: an adapter without a recorded base; add "base" to {d / META_FILE}')
    # train records the base relative to the repository root (models/base); models/finetuned sits two below it
    candidates = [Path(base)] if Path(base).is_absolute() else [Path(base), d.resolve().parent.parent / base]
    for path in candidates:
        if (path / "config.json").exists():
            return path
    raise NotFound(f"{d}: its base {base!r} is not at {[str(c) for c in candidates]}; run `dvc repro model`")


def _check_base(model_dir: Path, base_dir: Path) -> None:
    want = read_meta(model_dir).get("base_checkpoint")
    if want and checkpoint_hash(base_dir) != want:
        raise BadValue(
            f"{model_dir} was trained on base checkpoint {want} but {base_dir} is now {checkpoint_hash(base_dir)}; "
            "re-run training (`dvc repro train`) so the adapter matches its base"
        )


def pick_device(device: str = "cpu") -> str:
    """'auto' means CUDA when there is one, else CPU; anything else is passed through."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_causal_lm(model_dir: str | Path, device: str = "cpu", dtype: Any = None) -> tuple[Any, Any]:
    """(model, tokenizer) in eval mode: fp32 on CPU by default, bf16 on CUDA; an adapter is merged into its base."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    d = Path(model_dir)
    if not (d / "config.json").exists() and not is_adapter(d):
        raise NotFound(f"{d}: not a model directory (no config.json or adapter_config.json); run `dvc repro`")
    device = pick_device(device)
    dtype = dtype or (torch.bfloat16 if device.startswith("cuda") else torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(d)
    if is_adapter(d):
        from peft import PeftModel

        base_dir = resolve_base(d)
        _check_base(d, base_dir)
        base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=dtype)
        if len(tokenizer) > base.get_input_embeddings().num_embeddings:  # the adapter added a token (a new EOT)
            base.resize_token_embeddings(len(tokenizer), mean_resizing=False)  # its trained row comes from the adapter
        model = PeftModel.from_pretrained(base, d).merge_and_unload()  # one matmul per layer instead of three
    else:
        model = AutoModelForCausalLM.from_pretrained(d, dtype=dtype)
    return model.to(device).eval(), tokenizer


def save_model(
    model: Any, tokenizer: Any, out_dir: str | Path, info: dict[str, Any], state_dict: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Save weights (an adapter only, for LoRA) + tokenizer + lessismore.json; returns the json with its checkpoint.

    `info` should carry method, base and base_checkpoint; the checkpoint hash covers the base's for adapters.
    `state_dict` is for sharded (FSDP) models: the full state dict gathered by accelerator.get_state_dict.
    """
    out = Path(out_dir)
    model.save_pretrained(out, **({"state_dict": state_dict} if state_dict is not None else {}))  # safetensors
    _canonical_adapter_config(out)
    tokenizer.save_pretrained(out)
    (out / META_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    meta = {**info, "checkpoint": checkpoint_hash(out)}  # reads base_checkpoint from the file just written
    (out / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return meta


def _canonical_adapter_config(out: Path) -> None:
    """peft keeps target_modules as a set and writes it in hash order, which differs between runs; the checkpoint
    hash (and so every response and judgment id) must not: write the lists sorted and the keys in order."""
    path = out / "adapter_config.json"
    if not path.exists():
        return
    config = json.loads(path.read_text(encoding="utf-8"))
    for key in ("target_modules", "modules_to_save", "trainable_token_indices"):
        if isinstance(config.get(key), list):
            config[key] = sorted(config[key], key=str)
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
