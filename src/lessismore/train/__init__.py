"""The model and train stages' library: base checkpoints, chat-format collation with loss masking, the loop.

- base_model.py: materialise models/base/ (packaged GGUF, local directory, or a tiny random Llama for tests);
- collate.py: messages -> input_ids + labels (responses only, EOT included), right-padded batches;
- eot.py, dropout.py: LIMA's end-of-turn token and residual dropout, applied to the base before training;
- loop.py + runner.py: LoRA or full fine-tune, LIMA's optimizer and schedule, resumable under accelerate
  (distributed.py), checkpoints (checkpoints.py), the per-step DVCLive log (steplog.py);
- select.py: which epoch becomes models/finetuned/.
Empty on purpose: importing one module (the report reads steplog.py, generate reads collate.py) must not run the
others, so each stage's import closure, and so its dvc.yaml deps, stay exactly what it uses.
"""
