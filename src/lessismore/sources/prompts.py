"""Prompt JSONL -> Prompts: the held-out dev / test questions that models answer and judges compare.

Sits under sources/ (format "prompts_jsonl"). One object a line; the text is read from "prompt", else "text",
else the first turn of GAIR/lima's `{"conversations": ["..."]}`. Optional "category" and "id" (the file's own id),
and a lima line's "source", are kept in meta. Every record is a Prompt with the source's split.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from lessismore.records import Dropped, Prompt
from lessismore.sources.common import SourceFile, iter_json_lines

TEXT_KEYS = ("prompt", "text")
META_KEYS = ("category", "id", "source")


def read_prompts_jsonl(path: str, source: str, license: str, split: str) -> Iterator[Prompt | Dropped]:
    src = SourceFile(source=source, path=str(path), license=license, split=split, format="prompts_jsonl")
    for item in iter_json_lines(src):
        if isinstance(item, Dropped):
            yield item
            continue
        lineno, obj = item
        text = prompt_text(obj)
        if not isinstance(text, str):
            detail = f'{src.path}:{lineno}: no prompt text; write {{"prompt": "..."}} (or "text", or "conversations")'
            yield src.drop("no_prompt", lineno, detail, obj)
            continue
        meta = {k: obj[k] for k in META_KEYS if k in obj} | {"format": src.format, "split": split}
        yield Prompt(text=text, split=split, origin=src.origin(lineno), meta=meta)


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
