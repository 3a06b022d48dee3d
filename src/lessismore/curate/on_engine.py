"""curate's heavy per-row work on data.engine (engine.py: this process, or Ray Data on a cluster).

Two steps cost per candidate and are row-wise, so they run in batches wherever params say: the MinHash signatures of
near-duplicate removal (`signer`) and the sentence embeddings of diversity selection (`embedder`, a model loaded
once per Ray actor, on a GPU where the cluster has one). What needs every candidate at once (exact dedup, the LSH
decisions, decontamination against the shared dev/test index, selection) runs here, on their results.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from lessismore.curate.neardup import Sign, signature_batch
from lessismore.engine import map_batches

if TYPE_CHECKING:
    from lessismore.config import Data
    from lessismore.curate import Embed


def signer(spec: Data, *, shingle: int, num_perm: int) -> Sign:
    """texts -> (n, num_perm) uint32 MinHash values, computed in batches on spec.engine."""

    def sign(texts: list[str]) -> np.ndarray:
        import pyarrow as pa

        fn = partial(signature_batch, shingle=shingle, num_perm=num_perm)
        out = map_batches(fn, pa.table({"text": pa.array(texts, pa.string())}), spec, desc="minhash")
        return _matrix(out.column("minhash"), num_perm, np.uint32)

    return sign


def embedder(spec: Data) -> Embed:
    """texts -> L2-normalised float32 rows (curate/embed.py's model), computed in batches on spec.engine."""

    def embed(texts: list[str]) -> np.ndarray:
        import pyarrow as pa

        from lessismore.curate.embed import EmbedBatch

        out = map_batches(EmbedBatch, pa.table({"text": pa.array(texts, pa.string())}), spec, desc="embed", gpu=True)
        return _matrix(out.column("vector"), None, np.float32)

    return embed


def _matrix(column, width: int | None, dtype) -> np.ndarray:
    """A fixed-size-list column -> a 2-D array (no copy through Python lists)."""
    flat = column.combine_chunks()
    width = width or flat.type.list_size
    return np.asarray(flat.flatten().to_numpy(zero_copy_only=False), dtype=dtype).reshape(-1, width)
