"""DVC stage `model`: params model.* -> models/base/ (a plain safetensors checkpoint + tokenizer with a chat template).

The packaged GGUF (the demo's SmolLM2-135M-Instruct) is de-quantised and converted once here, so every later stage
loads ordinary safetensors. models/base/lessismore.json records where it came from and its checkpoint hash.
"""

from __future__ import annotations

import shutil
import time

from lessismore import contract as c
from lessismore import records
from lessismore.config import load_params
from lessismore.errors import run_stage
from lessismore.models import META_FILE, checkpoint_hash
from lessismore.train.base_model import materialise


def main() -> None:
    params = load_params(stage="model")
    m = params.model
    shutil.rmtree(c.BASE_MODEL, ignore_errors=True)  # a stale file from another source would change the hash
    start = time.perf_counter()
    materialise(m, c.BASE_MODEL, params.base.seed)
    source = {"package": m.package, "gguf_file": m.gguf_file, "path": m.path}
    info = {"method": "base", "name": m.name, "source": m.source, **{k: v for k, v in source.items() if v}}
    info["checkpoint"] = checkpoint_hash(c.BASE_MODEL)
    records.write_json(c.BASE_MODEL / META_FILE, info)
    took = time.perf_counter() - start
    print(f"model: {m.name} ({m.source}) -> {c.BASE_MODEL} checkpoint {info['checkpoint']} in {took:.1f} s")


if __name__ == "__main__":
    run_stage("model", main)
