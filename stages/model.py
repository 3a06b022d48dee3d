"""DVC stage `model`: params model.* -> models/base/ (a plain safetensors checkpoint + tokenizer with a chat template).

The packaged GGUF (the demo's SmolLM2-135M-Instruct) is de-quantised and converted once here, so every later stage
loads ordinary safetensors. models/base/lessismore.json records where it came from and its checkpoint hash.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict
from pathlib import Path

from lessismore import records
from lessismore.config import load_params
from lessismore.generate.loading import META_FILE, checkpoint_hash
from lessismore.train import base_model

OUT = Path("models/base")


def main() -> None:
    # ---------------------------------------------------------------- params
    params = load_params()
    m = params.model

    # ---------------------------------------------------------------- build
    shutil.rmtree(OUT, ignore_errors=True)  # a stale file from another source would change the checkpoint hash
    start = time.perf_counter()
    if m.source == "gguf_package":
        base_model.from_gguf_package(m.package, m.gguf_file, OUT)
    elif m.source == "local":
        base_model.from_local(m.path, OUT)
    else:
        base_model.build_tiny_random(OUT, seed=params.base.seed, **asdict(m.tiny))

    # ---------------------------------------------------------------- record
    info = {
        "method": "base",
        "name": m.name,
        "source": m.source,
        "package": m.package,
        "gguf_file": m.gguf_file,
        "path": m.path,
        "checkpoint": checkpoint_hash(OUT),
    }
    records.write_json(OUT / META_FILE, info)
    print(
        f"model: {m.name} ({m.source}) -> {OUT} checkpoint {info['checkpoint']} in {time.perf_counter() - start:.1f} s"
    )


if __name__ == "__main__":
    main()
