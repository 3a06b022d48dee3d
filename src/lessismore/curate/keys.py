"""What curate remembers of each candidate while its text waits on disk: a `Key` (id, where it came from, site), and
`Keys`, many of them as columns.

Sits in curate/ under dedup, spill, select and the funnel. A pool of a million candidates keeps a million keys in
the stage's process from the first batch to the selection; as Python tuples they took ~250 bytes a row, scattered
over the heap between the batches' short-lived objects. `Keys` holds them as an Arrow table (~60 bytes a row, in
a few large buffers), appended a batch at a time; a single row is read back as a Key where a message names it,
and selection works on the columns.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lessismore.records import Example

Group = tuple[str, str]  # (source, site); site "" when the source has none


class Key(NamedTuple):
    """What selection needs of a candidate, not its text: its id, where it came from, its site."""

    id: str
    source: str
    file: str
    row: str
    site: str  # meta "site" (Stack Exchange), "" when the source has none

    @classmethod
    def of(cls, example: Example) -> Key:
        o = example.origin
        return cls(example.id, sys.intern(o.source), sys.intern(o.file), o.row, sys.intern(_site(example)))

    @property
    def group(self) -> Group:
        return self.source, self.site


def _site(example: Example) -> str:
    return str(example.meta.get("site") or "")


_SCHEMA = pa.schema([(name, pa.string()) for name in Key._fields])
_ORDER = [(name, "ascending") for name in ("id", "source", "file", "row")]


class Keys:
    """Keys as columns, in order: `extend` appends a batch, `keys[k]` is row k's Key, `take` a subset, `order` the
    rows sorted by (id, source, file, row). The batches are joined into one table the first time a row is read
    after an append."""

    def __init__(self, table: Any = None) -> None:
        self._parts: list[Any] = [] if table is None or not table.num_rows else [table]
        self._table: Any = None

    @classmethod
    def of(cls, keys: Iterable[Key]) -> Keys:
        columns = list(zip(*keys, strict=True)) or [()] * len(Key._fields)
        return cls(pa.table([pa.array(c, pa.string()) for c in columns], schema=_SCHEMA))

    def extend(self, other: Keys) -> None:
        if len(other):
            self._parts.append(other.table)
            self._table = None

    @property
    def table(self) -> Any:
        """The columns (id, source, file, row, site) as one Arrow table of contiguous arrays."""
        if self._table is None:
            joined = pa.concat_tables(self._parts) if self._parts else _SCHEMA.empty_table()
            self._table = joined.combine_chunks()
            self._parts = [self._table]
        return self._table

    def __len__(self) -> int:
        return sum(part.num_rows for part in self._parts)

    def __getitem__(self, k: int) -> Key:
        return Key(*(self.table.column(name)[k].as_py() for name in Key._fields))

    def __iter__(self) -> Iterator[Key]:
        return (Key(*row) for row in zip(*(self.column(name) for name in Key._fields), strict=True))

    def column(self, name: str, rows: np.ndarray | None = None) -> list[str]:
        """One column as Python strings: every row's, or those at `rows`."""
        col = self.table.column(name)
        return (col if rows is None else col.take(pa.array(rows, pa.int64()))).to_pylist()

    def take(self, rows: np.ndarray | Sequence[int]) -> Keys:
        return Keys(self.table.take(pa.array(np.asarray(rows, dtype=np.int64), pa.int64())))

    def order(self) -> np.ndarray:
        """Row numbers sorted by (id, source, file, row): Arrow compares UTF-8 bytes, which orders strings as
        Python does (by code point); ties keep row order."""
        return pc.sort_indices(self.table, sort_keys=_ORDER).to_numpy().astype(np.int64)

    def codes(self, name: str) -> tuple[np.ndarray, list[str]]:
        """A column as (each row's code, the distinct values in order of first appearance)."""
        if not len(self):
            return np.zeros(0, dtype=np.int64), []
        encoded = pc.dictionary_encode(self.table.column(name)).combine_chunks()
        return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), encoded.dictionary.to_pylist()
