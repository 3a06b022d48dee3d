"""curate's embeddings on data.engine (engine.py: this process, or Ray Data on a cluster).

The sentence embeddings of diversity selection (`embedder`) are row-wise and need a model: they run in batches
wherever params say, the model loaded once per Ray actor, on a GPU where the cluster has one. The other per-row
work (filters, decontamination, MinHash signatures) runs in funnel.Prescreen, a batch at a time on engine.pooled;
what needs every candidate at once (exact dedup, the LSH decisions, selection) runs in the stage, on their results.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from lessismore.engine import map_batches

if TYPE_CHECKING:
    from lessismore.config import Data
    from lessismore.curate import Embed


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
