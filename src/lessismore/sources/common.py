"""What every source adapter shares: one context per file that builds Origins, records and Dropped entries.

Sits under sources/: each adapter (stackexchange, wikihow, lima, prompts) parses its own format and hands the
pieces to a `SourceFile`, so every record gets the same origin, the same meta keys ("format", "split") and the
same train -> Example / dev, test -> Prompt rule. Also the line readers that surface bad bytes instead of crashing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lessismore.records import Dropped, Example, Message, Origin, Prompt

Record = Example | Prompt | Dropped


@dataclass(frozen=True)
class SourceFile:
    """One source file being read: its params entry (name, license, split) plus its format and path."""

    source: str  # ingest.sources[].name
    path: str
    license: str
    split: str  # train -> Examples; dev / test -> Prompts
    format: str  # the READERS key, copied into every record's meta

    def origin(self, row: str | int) -> Origin:
        return Origin(source=self.source, file=self.path, row=str(row), license=self.license)

    def drop(self, reason: str, row: str | int, detail: str, record: dict[str, Any] | None = None) -> Dropped:
        return Dropped(stage="ingest", reason=reason, origin=self.origin(row), detail=detail, record=record or {})

    def record(self, turns: list[str], row: str | int, meta: dict[str, Any]) -> Example | Prompt:
        """Alternating user/assistant turns -> an Example (train) or a Prompt of the first turn (dev/test)."""
        meta = {**meta, "format": self.format, "split": self.split}
        if self.split != "train":
            return Prompt(text=turns[0], split=self.split, origin=self.origin(row), meta=meta)
        roles = ("user", "assistant")
        messages = tuple(Message(role=roles[i % 2], content=t) for i, t in enumerate(turns))
        return Example(messages=messages, origin=self.origin(row), meta=meta)

    def invalid_utf8(self, lineno: int, err: UnicodeDecodeError, raw: bytes) -> Dropped:
        detail = (
            f"{self.path}:{lineno}: not valid UTF-8 ({err.reason} at byte {err.start}); "
            "re-save the file as UTF-8 (e.g. `iconv -f cp1252 -t utf-8`) or fix that line"
        )
        return self.drop("invalid_utf8", lineno, detail, {"raw": raw.decode("utf-8", errors="replace")[:2000]})


def iter_lines(path: str | Path) -> Iterator[tuple[int, str | UnicodeDecodeError, bytes]]:
    """Yield (1-based line number, decoded text or the decode error, raw bytes); a UTF-8 BOM is dropped."""
    with Path(path).open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                yield lineno, raw.decode("utf-8"), raw
            except UnicodeDecodeError as err:
                yield lineno, err, raw


def iter_json_lines(src: SourceFile) -> Iterator[tuple[int, dict[str, Any]] | Dropped]:
    """Yield (line number, object) for each JSON-object line of a .jsonl file; every bad line becomes a Dropped."""
    for lineno, text, raw in iter_lines(src.path):
        if isinstance(text, UnicodeDecodeError):
            yield src.invalid_utf8(lineno, text, raw)
            continue
        text = text.rstrip("\r\n")
        if not text.strip():
            continue  # blank lines separate nothing in JSONL; they are not records
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as err:
            detail = f"{src.path}:{lineno}: not valid JSON ({err.msg}: column {err.colno}); fix or delete that line"
            yield src.drop("malformed_json", lineno, detail, {"raw": text[:2000]})
            continue
        if not isinstance(obj, dict):
            detail = f"{src.path}:{lineno}: a JSON {type(obj).__name__}, expected an object; write one object a line"
            yield src.drop("bad_shape", lineno, detail, {"raw": text[:2000]})
            continue
        yield lineno, obj
