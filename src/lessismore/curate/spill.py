"""Where curate keeps the candidates that passed the per-row steps until the near-duplicate groups are known.

Sits in curate/, between the streamed steps and selection: the survivors go to Parquet shards in a temporary
folder (records.ShardWriter, the data contract's own format) and their MinHash values to one .npy file, read back as
a memory map; their prompts to a column of their own, so selection can read the few it embeds without the rest.
What stays in memory is a row's key (keys.Keys: id, where it came from, site, as columns), not its text: the
examples are read again, once, in order, after the selection is made.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lessismore.curate.keys import Keys
from lessismore.records import ROW_GROUP_ROWS, Example, ShardWriter, from_dict


@dataclass(frozen=True)
class Survivors:
    """Rows that passed the per-row steps, in order, as the spill takes them: the rows themselves (an Arrow table of
    records.Example, never Python objects), their keys, their MinHash values, their prompts."""

    table: Any
    keys: Keys
    values: np.ndarray  # (rows, num_perm) uint32: neardup.word_signatures
    prompts: list[str]

    def __len__(self) -> int:
        return self.table.num_rows

    def take(self, rows: list[int]) -> Survivors:
        return Survivors(
            self.table.take(pa.array(rows, pa.int64())),
            self.keys.take(rows),
            self.values[np.asarray(rows, dtype=np.int64)],
            [self.prompts[i] for i in rows],
        )


class Spill:
    """Examples and their MinHash values, appended in order, read back in the same order. A context manager: the
    folder goes when it closes. `keys` holds every row's key, in the same order; the funnel appends to it as soon as
    a row survives exact dedup (a later duplicate names it), ahead of the row itself."""

    def __init__(self, shard_rows: int, num_perm: int) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="lessismore-curate-")
        self.folder = Path(self._dir.name)
        self.shard_rows, self.num_perm = shard_rows, num_perm
        self._writer = ShardWriter(self.folder / "examples", Example, shard_rows)
        self._parts: list[Path] = []  # one .npy of values a call to add
        self._prompts: list[Path] = []  # one .parquet of prompts a call to add
        self.keys = Keys()  # each row's key, in order

    def add(self, rows: Survivors) -> None:
        """Survivors: their rows as an Arrow table of Examples, their MinHash values and their prompts (their keys
        are in `keys` already)."""
        assert rows.values.shape == (len(rows), self.num_perm), "one row of MinHash values an example"
        self._writer.write_table(rows.table)
        part = self.folder / f"minhash-{len(self._parts):05d}.npy"
        np.save(part, rows.values.astype(np.uint32, copy=False))
        self._parts.append(part)
        prompts = self.folder / f"prompts-{len(self._prompts):05d}.parquet"
        pq.write_table(pa.table({"prompt": pa.array(rows.prompts, pa.string())}), prompts)
        self._prompts.append(prompts)

    def where(self, k: int) -> str:
        """Row k's "file row N", for the quarantine detail of a row it keeps out."""
        key = self.keys[k]
        return f"{key.file} row {key.row}"

    def prompts(self, rows: np.ndarray) -> list[str]:
        """The prompts of the rows at `rows` (ascending positions), read from their column alone."""
        out, at, rows = [], 0, np.asarray(rows, dtype=np.int64)
        for part in self._prompts:
            n = pq.read_metadata(part).num_rows
            inside = rows[(rows >= at) & (rows < at + n)] - at
            if len(inside):
                out += pq.read_table(part, columns=["prompt"]).column("prompt").take(inside).to_pylist()
            at += n
        return out

    def take(self, rows: np.ndarray) -> list[Example]:
        """The examples at `rows` (ascending positions), reading only the shards that hold one (selection by scores
        reads the few it scores; the rest stay on disk until `examples` reads them all, once, in order)."""
        self._writer.close()
        rows, out = np.asarray(rows, dtype=np.int64), []
        for i, shard in enumerate(self._writer.shards):
            at = i * self.shard_rows
            inside = rows[(rows >= at) & (rows < at + self.shard_rows)] - at
            if len(inside):
                out += [from_dict(Example, r) for r in pq.read_table(shard).take(inside).to_pylist()]
        return out

    def values(self) -> np.ndarray:
        """Every row's values, (n, num_perm) uint32, as one read-only memory map (on disk, paged in as used; the
        parts are joined with plain writes, so no page of it is resident until read: see neardup.let_go)."""
        path = self.folder / "minhash.u32"
        with path.open("wb") as out:
            for part in self._parts:
                out.write(np.load(part).astype("<u4", copy=False).tobytes())
                part.unlink()
        return np.memmap(path, dtype="<u4", mode="r", shape=(len(self.keys), self.num_perm))

    def groups(self) -> list[tuple[Path, int, range]]:
        """Every row group of the examples (records.ROW_GROUP_ROWS rows, the last of a shard fewer): its shard, its
        number there and the positions of its rows, in order (the shards are written whole once this is asked)."""
        self._writer.close()
        out, n = [], len(self.keys)
        for i, path in enumerate(self._writer.shards):
            end = min(n, (i + 1) * self.shard_rows)
            for g, start in enumerate(range(i * self.shard_rows, end, ROW_GROUP_ROWS)):
                out.append((path, g, range(start, min(end, start + ROW_GROUP_ROWS))))
        return out

    def __enter__(self) -> Spill:
        return self

    def __exit__(self, *exc: object) -> None:
        self._writer.close()
        self._dir.cleanup()


def read_rows(path: Path, group: int) -> list[dict[str, Any]]:
    """One row group of a spill shard, each row as `to_dict` gives its Example (meta decoded from its JSON text)."""
    rows = pq.ParquetFile(path).read_row_group(group).to_pylist()
    for row in rows:
        row["meta"] = json.loads(row["meta"])
    return rows
