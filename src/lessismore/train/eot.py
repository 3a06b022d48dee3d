"""LIMA's end-of-turn (EOT) token: make the tokenizer, the model and its saved generation config agree on it.

Called by the train stage on the base model, before LoRA wrapping and before `train()`. Two modes (params
`train.eot`):
- "template": keep the chat template's own end-of-turn (`<|im_end|>` for ChatML, else what the template writes
  after an assistant turn, else eos);
- "new_token": as LIMA, add a fresh special token (`<|eot|>`) that closes every utterance. The chat template is
  rewritten so that its end-of-turn string becomes the new token; training collation, the transformers backend
  (collate.end_of_turn_id reads the template) and the saved tokenizer then all agree. The new embedding row
  (input, and output when untied) starts at the mean of the existing rows (Hewitt 2021, "Initializing new word
  embeddings"): deterministic, and the new token's initial logit is close to the average one, so the model's
  other predictions do not move.
A tokenizer without a chat template gets a plain `role:\\ncontent<EOT>` one (LIMA fine-tuned a base LLaMA).
Both modes set generation_config.eos_token_id to the EOT, so a plain `model.generate` after loading stops there.
"""

from __future__ import annotations

from typing import Any

from lessismore.errors import BadValue
from lessismore.train.collate import end_of_turn_id

NEW_EOT_TOKEN = "<|eot|>"
EOT_MODES = ("template", "new_token")


def plain_template(eot: str) -> str:
    """A minimal incremental chat template for tokenizers that have none: each turn is `role:\\ncontent<eot>\\n`.

    >>> "assistant" in plain_template("</s>") and "</s>" in plain_template("</s>")
    True
    """
    return (
        "{% for message in messages %}{{ message['role'] + ':\\n' + message['content'] + '" + eot + "\\n' }}"
        "{% endfor %}{% if add_generation_prompt %}{{ 'assistant:\\n' }}{% endif %}"
    )


def swap_eot(template: str, old: str, new: str) -> str:
    """The template with every literal `old` end-of-turn string replaced by `new`.

    >>> swap_eot("{{ m + '<|im_end|>\\n' }}", "<|im_end|>", "<|eot|>")
    "{{ m + '<|eot|>\\n' }}"
    """
    if old not in template:
        raise BadValue(
            f"the chat template does not write its end-of-turn {old!r} literally, so it cannot be swapped for "
            f"{new!r}; use params train.eot: template, or give the base model a template that spells it out"
        )
    return template.replace(old, new)


def mean_init_rows(model: Any, new_ids: list[int], n_old: int) -> None:
    """Set the embedding rows `new_ids` (input, and output when untied) to the mean of rows [0, n_old)."""
    import torch

    layers = [model.get_input_embeddings()]
    out = model.get_output_embeddings()
    if out is not None and out.weight is not layers[0].weight:
        layers.append(out)
    with torch.no_grad():
        for layer in layers:
            weight = layer.weight
            weight[new_ids] = weight[:n_old].mean(dim=0, keepdim=True).to(weight.dtype)


def prepare_eot(model: Any, tokenizer: Any, mode: str, token: str = NEW_EOT_TOKEN) -> tuple[Any, Any, str]:
    """Make every utterance end with the EOT of `mode`; returns (model, tokenizer, the EOT token string).

    Changes `model` and `tokenizer` in place. Idempotent: a checkpoint that already closes turns with `token`
    (a resumed run) is left as it is. Call it on the plain model, before LoRA wrapping.
    """
    if mode not in EOT_MODES:
        raise BadValue(f"train.eot {mode!r}: use 'template' or 'new_token'")
    if tokenizer.chat_template is None:
        if tokenizer.eos_token is None:
            raise BadValue("the tokenizer has no chat template and no eos token; give the base model either")
        tokenizer.chat_template = plain_template(tokenizer.eos_token)
    if mode == "new_token" and tokenizer.convert_ids_to_tokens(end_of_turn_id(tokenizer)) != token:
        old = tokenizer.convert_ids_to_tokens(end_of_turn_id(tokenizer))
        n_old = len(tokenizer)
        tokenizer.add_tokens([token], special_tokens=True)
        tokenizer.chat_template = swap_eot(tokenizer.chat_template, old, token)
        new_id = tokenizer.convert_tokens_to_ids(token)
        if end_of_turn_id(tokenizer) != new_id:
            raise BadValue(f"after swapping {old!r} for {token!r} the template still closes turns otherwise")
        if model.get_input_embeddings().weight.shape[0] < len(tokenizer):
            model.resize_token_embeddings(len(tokenizer), mean_resizing=False)  # rows set to the mean just below
        mean_init_rows(model, [new_id], min(n_old, new_id))
    elif mode == "new_token" and model.get_input_embeddings().weight.shape[0] < len(tokenizer):
        raise BadValue(f"the tokenizer has {token!r} but the model has no embedding row for it; a mismatched pair")
    eot_id = end_of_turn_id(tokenizer)
    model.generation_config.eos_token_id = eot_id  # saved as generation_config.json: generate() stops at EOT
    model.config.eos_token_id = eot_id  # config.json too, for servers that read it (vLLM, transformers serve)
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer, tokenizer.convert_ids_to_tokens(eot_id)
