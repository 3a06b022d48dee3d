"""The model and train stages' library: base checkpoints, chat-format collation with loss masking, the loop.

- base_model.py: materialise models/base/ (packaged GGUF, local directory, or a tiny random Llama for tests);
- collate.py: messages -> input_ids + labels (responses only, EOT included), right-padded batches;
- loop.py: LoRA or full fine-tune, LIMA's optimizer and schedule, the per-step CSV log, saving models/final/.
Import-light: torch, transformers and peft load inside the functions that use them.
"""

from __future__ import annotations

from lessismore.train.collate import IGNORE_INDEX, Collator, collate, encode_example, end_of_turn_id
from lessismore.train.loop import LOG_COLUMNS, linear_lr, plan_steps, save_model, train

__all__ = [
    "IGNORE_INDEX",
    "LOG_COLUMNS",
    "Collator",
    "collate",
    "encode_example",
    "end_of_turn_id",
    "linear_lr",
    "plan_steps",
    "save_model",
    "train",
]
