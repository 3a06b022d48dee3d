"""The content-keyed cache: every reply a judge gave and every score a scorer computed, by the hash of what it was
asked.

Used by judge/protocol.py (verdicts and grades) and scores/ (IFD, the quality and complexity raters): one file
format, one class. A key hashes everything that decides the answer. For a verdict: the judge's fingerprint (model
and weights, mode, decoding, calibration), the template's hash, the order, the prompt and both answer texts (see
`verdict_key`). For a score: its kind, the scorer's fingerprint and the example's content (scores/__init__.py
`score_key`). So a re-run with nothing changed computes nothing, and changing any of those asks again. The file
(for the judge, outputs/judge_cache.jsonl, a DVC out with `persist: true`, so `dvc push` shares it between
machines) is append-only: each batch of rows is written and flushed the moment it is done, so a crash or a kill -9
loses at most the line being written, and a torn last line is cut off when the cache is opened. A later row with
the same key wins (a re-judged item after the cache was edited by hand). It lives under judge/ because the judge
came first and its stages' deps name this file; nothing in it is judge-specific but `verdict_key`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

from lessismore.records import content_id


def verdict_key(fingerprint: str, template: str, order: str, prompt: str, text_a: str, text_b: str = "") -> str:
    """The cache key and record id of one single judgment (order "ab"/"ba") or grade (order "abs").

    >>> k = verdict_key("j1", "t1", "ab", "Why?", "Because.", "No idea.")
    >>> k == verdict_key("j1", "t1", "ab", "Why?", "Because.", "No idea."), k == verdict_key("j1", "t1", "ba", "Why?",
    ...     "Because.", "No idea.")
    (True, False)
    """
    return content_id("verdict", fingerprint, template, order, prompt, text_a, text_b)


def seed_of(key: str) -> int:
    """A sampling seed derived from the content key (31 bits, what servers accept): a re-run draws the same.

    >>> seed_of("00000000000000ff")
    255
    """
    return int(key, 16) % (1 << 31)


def _own_copy(path: Path) -> None:
    """DVC may have checked the file out as a link into its cache: appending through it would corrupt the cache."""
    if path.is_symlink() or (path.exists() and path.stat().st_nlink > 1):
        data = path.read_bytes()
        path.unlink()
        path.write_bytes(data)


class KeyedCache:
    """An append-only jsonl of rows, each a JSON object with a "key" (a verdict: "verdict", "raw", "meta"; a score:
    see scores/); `path=None` keeps it in memory only."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None
        self.rows: dict[str, dict[str, Any]] = {}
        self.unreadable = 0  # lines that were not a whole row (a torn tail, a hand edit): those items are asked again
        self._fh: IO[str] | None = None
        if self.path and self.path.exists():
            self._load(self.path)

    def _load(self, path: Path) -> None:
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):  # a torn last line from a kill: cut it before appending
            self.unreadable += 1
            path.write_bytes(data[: data.rfind(b"\n") + 1])
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
                self.rows[row["key"]] = row
            except (ValueError, KeyError, TypeError):
                self.unreadable += bool(line.strip())

    def __len__(self) -> int:
        return len(self.rows)

    def __contains__(self, key: str) -> bool:
        return key in self.rows

    def get(self, key: str) -> dict[str, Any] | None:
        return self.rows.get(key)

    def put(self, rows: list[dict[str, Any]]) -> None:
        """Remember rows and append them to the file, flushed before returning."""
        for row in rows:
            self.rows[row["key"]] = row
        if self.path is None or not rows:
            return
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _own_copy(self.path)
            self._fh = self.path.open("a", encoding="utf-8")
        for row in rows:
            self._fh.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> KeyedCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fingerprint(self) -> str:
        """A hash of every key in the cache (for lineage: which judgments or scores stood behind a number)."""
        return content_id(sorted(self.rows))
