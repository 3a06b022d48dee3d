"""Prompt lists -> Prompts: the held-out dev / test questions that models answer and judges compare.

Sits under sources/, two formats:
  prompts_jsonl: one object a line; the text is read from "prompt", else "text", else the first turn of
                 GAIR/lima's `{"conversations": ["..."]}`. Optional "category" and "id" (the file's own id), and a
                 lima line's "source", are kept in meta. `prompt_row` converts one object (a line or an hf:// row).
  prompts_txt:   one prompt a line, blank lines skipped; a UTF-8 BOM is dropped and a line that is not UTF-8 is
                 quarantined, as the JSONL readers do.
Every record is a Prompt with the source's split.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from lessismore.records import Prompt
from lessismore.sources.common import Record, SourceFile, iter_lines, read_jsonl_rows

TEXT_KEYS = ("prompt", "text")
META_KEYS = ("category", "id", "source")


def read_prompts_jsonl(path: str, source: str, license: str, split: str) -> Iterator[Record]:
    src = SourceFile(source=source, path=str(path), license=license, split=split, format="prompts_jsonl")
    return read_jsonl_rows(src, prompt_row)


def prompt_row(src: SourceFile, row: int, obj: dict[str, Any]) -> Record:
    """One prompt object -> a Prompt, or a Dropped when it holds no prompt text."""
    text = prompt_text(obj)
    if not isinstance(text, str):
        detail = f'{src.at(row)}: no prompt text; write {{"prompt": "..."}} (or "text", or "conversations")'
        return src.drop("no_prompt", row, detail, obj)
    meta = {k: obj[k] for k in META_KEYS if obj.get(k) is not None} | {"format": src.format, "split": src.split}
    return Prompt(text=text, split=src.split, origin=src.origin(row), meta=meta)


def read_prompts_txt(path: str, source: str, license: str, split: str) -> Iterator[Record]:
    src = SourceFile(source=source, path=str(path), license=license, split=split, format="prompts_txt")
    for lineno, text, raw in iter_lines(src.path):
        if isinstance(text, UnicodeDecodeError):
            yield src.invalid_utf8(lineno, text, raw)
        elif text.strip():
            meta = {"format": src.format, "split": split}
            yield Prompt(text=text.strip(), split=split, origin=src.origin(lineno), meta=meta)


def prompt_text(obj: dict[str, Any]) -> str | None:
    """The prompt of one line, or None when it has none.

    >>> prompt_text({"prompt": "a"}), prompt_text({"text": "b"}), prompt_text({"conversations": ["c", "d"]})
    ('a', 'b', 'c')
    >>> prompt_text({"question": "x"}) is None, prompt_text({"conversations": []}) is None
    (True, True)
    """
    for key in TEXT_KEYS:
        if isinstance(obj.get(key), str):
            return obj[key]
    turns = obj.get("conversations")
    if isinstance(turns, list) and turns and isinstance(turns[0], str):
        return turns[0]
    return None
