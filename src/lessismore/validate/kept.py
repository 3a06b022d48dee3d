"""The ids validate has kept so far, and where each came from, in about 30 bytes an id.

Sits under validate/run.py: a later copy of a kept id is quarantined as "duplicate_id", naming the file and row
that was kept. A dict of id -> (file, row) strings cost about 280 bytes an id, measured at N=50 of
benchmarks/curate_scale.py (910k examples: validate's peak grew 462 -> 923 MiB, most of it that dict). Here a
record id (16 hex digits: records.content_id) is its 64-bit integer, in a sorted numpy array merged from a small
dict of the latest ones, the file is an index into the files seen, and a row that is a plain number (a post id, a
line) an int64; anything else (a longer id, a row such as "3:2") stays in a small dict of its own.
"""

from __future__ import annotations

import numpy as np

_MERGE = 1 << 16  # recent ids held in a dict before they are merged into the sorted arrays
_NOT_A_NUMBER = -1


class KeptIds:
    """`add(id, file, row)` once per kept record; `id in kept`; `kept.where(id)` -> (file, row)."""

    def __init__(self) -> None:
        self._sorted = np.zeros(0, dtype=np.uint64)  # merged ids, ascending
        self._sorted_pos = np.zeros(0, dtype=np.int64)  # each one's position (order of `add`)
        self._recent: dict[int, int] = {}  # id -> position, not merged yet
        self._other: dict[str, int] = {}  # ids that are not 16 hex digits -> position
        self._files: list[str] = []
        self._file_index: dict[str, int] = {}
        self._file_of: list[np.ndarray] = []  # uint32 chunks, one value a position
        self._row_of: list[np.ndarray] = []  # int64 chunks: the row as a number, or _NOT_A_NUMBER
        self._open_files: list[int] = []
        self._open_rows: list[int] = []
        self._text_rows: dict[int, str] = {}  # position -> row, where it is not a plain number
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def __contains__(self, key: str) -> bool:
        return self._position(key) is not None

    def add(self, key: str, file: str, row: str) -> None:
        """Remember `key` as kept from `file` row `row`; the caller has checked it is not in yet (`in`: 4 us)."""
        pos = self._count
        number = _as_int(key)
        if number is None:
            self._other[key] = pos
        else:
            self._recent[number] = pos
        if file not in self._file_index:
            self._file_index[file] = len(self._files)
            self._files.append(file)
        self._open_files.append(self._file_index[file])
        if row.isdigit() and (row == "0" or not row.startswith("0")) and len(row) < 19:
            self._open_rows.append(int(row))
        else:
            self._open_rows.append(_NOT_A_NUMBER)
            self._text_rows[pos] = row
        self._count += 1
        if len(self._recent) >= _MERGE:
            self._merge()

    def where(self, key: str) -> tuple[str, str]:
        """The file and row `key` was kept from; KeyError when it was not kept."""
        pos = self._position(key)
        if pos is None:
            raise KeyError(key)
        self._seal()
        chunk, at = divmod(pos, _MERGE)
        file, row = int(self._file_of[chunk][at]), int(self._row_of[chunk][at])
        return self._files[file], self._text_rows[pos] if row == _NOT_A_NUMBER else str(row)

    def _position(self, key: str) -> int | None:
        number = _as_int(key)
        if number is None:
            return self._other.get(key)
        if number in self._recent:
            return self._recent[number]
        at = int(np.searchsorted(self._sorted, np.uint64(number)))
        if at < len(self._sorted) and int(self._sorted[at]) == number:
            return int(self._sorted_pos[at])
        return None

    def _merge(self) -> None:
        ids = np.fromiter(self._recent.keys(), dtype=np.uint64, count=len(self._recent))
        pos = np.fromiter(self._recent.values(), dtype=np.int64, count=len(self._recent))
        ids, pos = np.concatenate([self._sorted, ids]), np.concatenate([self._sorted_pos, pos])
        order = np.argsort(ids, kind="stable")
        self._sorted, self._sorted_pos, self._recent = ids[order], pos[order], {}
        self._seal()

    def _seal(self) -> None:
        """Move the open file and row lists into fixed-size numpy chunks (the last one may be partial)."""
        while self._open_files:
            if self._file_of and len(self._file_of[-1]) < _MERGE:  # top up a partial last chunk
                room = _MERGE - len(self._file_of[-1])
                files, rows = self._open_files[:room], self._open_rows[:room]
                self._file_of[-1] = np.concatenate([self._file_of[-1], np.asarray(files, dtype=np.uint32)])
                self._row_of[-1] = np.concatenate([self._row_of[-1], np.asarray(rows, dtype=np.int64)])
            else:
                files, rows = self._open_files[:_MERGE], self._open_rows[:_MERGE]
                self._file_of.append(np.asarray(files, dtype=np.uint32))
                self._row_of.append(np.asarray(rows, dtype=np.int64))
            del self._open_files[: len(files)], self._open_rows[: len(rows)]


def _as_int(key: str) -> int | None:
    """A record id's 64 bits, or None when it is not 16 hex digits (then it is kept as text)."""
    if len(key) != 16:
        return None
    try:
        return int(key, 16)
    except ValueError:
        return None
