"""What every source adapter shares: one context per file that builds Origins, records and Dropped entries.

Sits under sources/: each adapter parses its own format into rows and hands each row to its row converter, which
uses a `SourceFile` so every record gets the same origin, the same meta keys ("format", "split") and the same
train -> Example / dev, test -> Prompt rule. Also the line, JSONL and CSV readers (over storage.open_binary, so
local and s3:// alike) that surface bad bytes, bad JSON and bad quoting as Dropped entries instead of crashing.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from lessismore.records import Dropped, Example, Message, Origin, Prompt
from lessismore.sources.html import decode_entities
from lessismore.storage import open_binary

Record = Example | Prompt | Dropped
MARKUP_FORMATS = ("stackexchange_xml",)  # the reader turns HTML into markdown, entities included
_SURROGATE = re.compile(r"[\udc80-\udcff]")  # what surrogateescape turns undecodable bytes into
_LONE = re.compile(r"[\ud800-\udfff]")  # a JSON escape such as \ud800 alone: valid JSON, not a character


@dataclass(frozen=True)
class SourceFile:
    """One source file (or dataset split) being read: its params entry (name, license, split), format and path."""

    source: str  # ingest.sources[].name
    path: str  # a local path, an s3:// URI, or hf://owner/name[split]
    license: str
    split: str  # train -> Examples; dev / test -> Prompts
    format: str  # the READERS key, copied into every record's meta
    unit: str = "line"  # what a row number counts: "line" (text files), "item" (a JSON list), "row" (an hf dataset)

    def origin(self, row: str | int) -> Origin:
        return Origin(source=self.source, file=self.path, row=str(row), license=self.license)

    def at(self, row: str | int) -> str:
        """Where a row is, for details: "a.jsonl:12" (line 12), "a.json item 3", "hf://o/n[train] row 3"."""
        return f"{self.path}:{row}" if self.unit == "line" else f"{self.path} {self.unit} {row}"

    def drop(self, reason: str, row: str | int, detail: str, record: dict[str, Any] | None = None) -> Dropped:
        return Dropped(stage="ingest", reason=reason, origin=self.origin(row), detail=detail, record=record or {})

    def record(
        self, turns: list[str], row: str | int, meta: dict[str, Any], roles: Sequence[str] | None = None
    ) -> Example | Prompt | Dropped:
        """Turns -> an Example (train) or a Prompt (dev/test) of the first user turn; a Dropped when a turn or a meta
        value holds a lone surrogate (a JSON file's "\\ud800" escape without its pair: no character, and no UTF-8).

        HTML entities are decoded once (sources.html.decode_entities) in every format but those whose reader
        converts markup itself (MARKUP_FORMATS); meta["entities_decoded"] counts them.
        Without `roles` the turns alternate user / assistant from the user (LIMA's shape); chat formats pass each
        turn's role as the file has it (system / user / assistant), kept in order: validate judges the order.
        A Prompt keeps a system turn that came before it in meta["system"].
        """
        if any(_LONE.search(t) for t in turns) or _holds_lone(meta):
            return self.lone_surrogate(row, turns)
        roles = list(roles) if roles is not None else [("user", "assistant")[i % 2] for i in range(len(turns))]
        meta = {**meta, "format": self.format, "split": self.split}
        if self.format not in MARKUP_FORMATS:
            decoded = [decode_entities(t) for t in turns]
            turns = [t for t, _ in decoded]
            if entities := sum(n for _, n in decoded):
                meta["entities_decoded"] = entities  # lineage: the text is not byte for byte the file's
        if self.split != "train":
            first = roles.index("user") if "user" in roles else 0
            system = [t for t, r in zip(turns[:first], roles[:first], strict=True) if r == "system"]
            meta |= {"system": system[0]} if system else {}
            return Prompt(text=turns[first], split=self.split, origin=self.origin(row), meta=meta)
        messages = tuple(Message(role=r, content=t) for r, t in zip(roles, turns, strict=True))
        return Example(messages=messages, origin=self.origin(row), meta=meta)

    def invalid_utf8(self, lineno: int, err: UnicodeDecodeError | None, raw: bytes) -> Dropped:
        where = f" ({err.reason} at byte {err.start})" if err else ""
        detail = (
            f"{self.at(lineno)}: not valid UTF-8{where}; "
            "re-save the file as UTF-8 (e.g. `iconv -f cp1252 -t utf-8`) or fix that line"
        )
        return self.drop("invalid_utf8", lineno, detail, {"raw": raw.decode("utf-8", errors="replace")[:2000]})

    def lone_surrogate(self, row: str | int, turns: list[str]) -> Dropped:
        joined = "\n\n".join(turns)
        found = _LONE.search(joined)
        where = f"the text {_escaped(joined[max(0, found.start() - 30) : found.end() + 30])!r}" if found else "meta"
        detail = (
            f"{self.at(row)}: a lone UTF-16 surrogate escape (a \\ud800-\\udfff without its pair) in {where}; "
            "it is no character and cannot be written as UTF-8: fix that escape in the file (the character itself, "
            "or both halves of the pair)"
        )
        return self.drop("invalid_unicode", row, detail, {"raw": _escaped(joined)[:2000]})


def _escaped(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")  # a lone surrogate as its \\udxxx escape


def _holds_lone(value: Any) -> bool:
    if isinstance(value, str):
        return bool(_LONE.search(value))
    if isinstance(value, dict):
        return any(_holds_lone(k) or _holds_lone(v) for k, v in value.items())
    return isinstance(value, list | tuple) and any(_holds_lone(v) for v in value)


RowFn = Callable[[SourceFile, int, dict[str, Any]], Record]  # one parsed row (number, dict) -> a record or a Dropped


def iter_lines(path: str) -> Iterator[tuple[int, str | UnicodeDecodeError, bytes]]:
    """Yield (1-based line number, decoded text or the decode error, raw bytes); a UTF-8 BOM is dropped."""
    with open_binary(path) as fh:
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
            detail = f"{src.at(lineno)}: not valid JSON ({err.msg}: column {err.colno}); fix or delete that line"
            yield src.drop("malformed_json", lineno, detail, {"raw": text[:2000]})
            continue
        if not isinstance(obj, dict):
            detail = f"{src.at(lineno)}: a JSON {type(obj).__name__}, expected an object; write one object a line"
            yield src.drop("bad_shape", lineno, detail, {"raw": text[:2000]})
            continue
        yield lineno, obj


def read_jsonl_rows(src: SourceFile, convert: RowFn) -> Iterator[Record]:
    """A JSONL file through a row converter: every line's object -> a record, every bad line -> a Dropped."""
    for item in iter_json_lines(src):
        yield item if isinstance(item, Dropped) else convert(src, *item)


def iter_csv(src: SourceFile) -> Iterator[tuple[int, list[str]] | Dropped]:
    """Yield (first line of the record, cells), the header first; bad bytes, bad quoting and wrong field counts
    become Dropped entries (the header's width is the norm)."""
    with open_binary(src.path) as raw:
        fh = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")
        reader, width = csv.reader(fh, strict=True), 0
        while True:
            start = reader.line_num + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as err:
                yield src.drop("malformed_csv", start, f"{src.at(start)}: {err}; fix the quoting on that row")
                continue
            width = width or len(cells)
            if any(_SURROGATE.search(c) for c in cells):
                raw_row = ",".join(cells).encode("utf-8", "surrogateescape")
                yield src.invalid_utf8(start, None, raw_row)
            elif cells and len(cells) != width:
                detail = f"{src.at(start)}: {len(cells)} fields, the header has {width}; quote fields with commas"
                yield src.drop("malformed_csv", start, detail, {"raw": ",".join(cells)[:2000]})
            elif cells:
                yield start, cells


def has_bad_bytes(value: Any) -> bool:
    """True when any string inside `value` holds bytes that were not UTF-8 (decoded with surrogateescape).

    >>> has_bad_bytes({"a": ["ok", "caf\\udce9"]}), has_bad_bytes({"a": "café"})
    (True, False)
    """
    if isinstance(value, str):
        return bool(_SURROGATE.search(value))
    if isinstance(value, dict):
        return any(has_bad_bytes(v) for v in value.values())
    return isinstance(value, list) and any(has_bad_bytes(v) for v in value)
