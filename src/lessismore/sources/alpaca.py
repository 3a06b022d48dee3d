"""Alpaca JSON -> Examples: `[{"instruction": ..., "input": ..., "output": ...}, ...]`, or the same one a line.

Sits under sources/ (format "alpaca_json"): Stanford Alpaca's released shape (a JSON list) and its JSONL and
hf:// variants. The prompt is the instruction, followed by a blank line and the input when there is one; the
output is the answer. LLaMA-Factory's `history` (a list of [user, assistant] pairs, earliest first; how LIMA's
train set ships its 30 dialogues in that format) becomes the earlier turns, so a dialogue stays a dialogue and
trains on every assistant turn. `alpaca_row` converts one object, from a file or a dataset row.

A JSON list is one document, so it is parsed whole (Alpaca-52k: 22 MB) and its rows are the list's 0-based item
numbers. A file that does not parse at all is one Dropped naming the line and column, not a crash: the stage goes
on, the quarantine says what to fix, and validate's "every declared source present" check then stops the run.
Bytes that are not UTF-8 are decoded with surrogateescape, so only the items holding them are quarantined.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from lessismore.sources.common import Record, SourceFile, has_bad_bytes, read_jsonl_rows
from lessismore.storage import open_binary

_FIELDS = '{"instruction": "...", "input": "...", "output": "..."}'


def read_alpaca_json(path: str, source: str, license: str, split: str) -> Iterator[Record]:
    src = SourceFile(source=source, path=str(path), license=license, split=split, format="alpaca_json")
    with open_binary(src.path) as fh:
        head = fh.read(64).removeprefix(b"\xef\xbb\xbf").lstrip()
    if not head.startswith(b"["):  # not a JSON list: one object a line
        yield from read_jsonl_rows(src, alpaca_row)
        return
    yield from _read_list(SourceFile(source, src.path, license, split, src.format, unit="item"))


def _read_list(src: SourceFile) -> Iterator[Record]:
    with open_binary(src.path) as fh:
        text = fh.read().removeprefix(b"\xef\xbb\xbf").decode("utf-8", errors="surrogateescape")
    try:
        items = json.loads(text)
    except json.JSONDecodeError as err:
        detail = (
            f"{src.path}:{err.lineno}:{err.colno}: not valid JSON ({err.msg}); nothing in the file could be read: "
            "fix the file there (`python -m json.tool` shows the spot) or re-export it"
        )
        yield src.drop("malformed_json", err.lineno, detail, {"raw": text[max(0, err.pos - 200) :][:400]})
        return
    for i, obj in enumerate(items):
        if not isinstance(obj, dict):
            detail = f"{src.at(i)}: a JSON {type(obj).__name__}, expected an object {_FIELDS}"
            yield src.drop("bad_shape", i, detail, {"raw": json.dumps(obj)[:2000]})
        elif has_bad_bytes(obj):
            raw = json.dumps(obj, ensure_ascii=False).encode("utf-8", "surrogateescape")
            yield src.invalid_utf8(i, None, raw)
        else:
            yield alpaca_row(src, i, obj)


def alpaca_row(src: SourceFile, row: int, obj: dict[str, Any]) -> Record:
    """One {"instruction", "input", "output"} object -> a record, or a Dropped naming the field that is wrong."""
    problem = check_fields(obj, src.split)
    if problem:
        return src.drop(problem[0], row, f"{src.at(row)}: {problem[1]}", obj)
    instruction, extra = obj["instruction"], obj.get("input") or ""
    prompt = f"{instruction}\n\n{extra}" if extra.strip() else instruction
    history = [turn for pair in obj.get("history") or [] for turn in pair]
    meta = {"has_input": bool(extra.strip()), "n_turns": len(history) + 2}
    return src.record([*history, prompt, obj.get("output") or ""], row, meta)


def check_fields(obj: dict[str, Any], split: str) -> tuple[str, str] | None:
    """(reason, what is wrong and the fix) for an object that cannot become a record, else None.

    >>> check_fields({"instruction": "Add 2 and 2.", "input": "", "output": "4"}, "train") is None
    True
    >>> check_fields({"instruction": "Add.", "output": 4}, "train")[0], check_fields({"output": "4"}, "train")[0]
    ('bad_type', 'missing_field')
    >>> check_fields({"instruction": "Why?"}, "test") is None  # held-out prompts need no output
    True
    >>> check_fields({"instruction": "And?", "output": "B.", "history": [["Hi", "A."]]}, "train") is None
    True
    >>> check_fields({"instruction": "And?", "output": "B.", "history": [["Hi"]]}, "train")[0]
    'bad_type'
    """
    required = ("instruction", "output") if split == "train" else ("instruction",)
    for key in required:
        if obj.get(key) is None:
            return "missing_field", f'no "{key}"; each object needs {_FIELDS} ("input" may be empty)'
    for key in ("instruction", "input", "output"):
        if obj.get(key) is not None and not isinstance(obj[key], str):
            return "bad_type", f'"{key}" is {type(obj[key]).__name__}, not a string; quote it in the file'
    history = obj.get("history") or []
    pair = isinstance(history, list) and all(
        isinstance(p, list | tuple) and len(p) == 2 and all(isinstance(t, str) for t in p) for p in history
    )
    if not pair:
        return "bad_type", '"history" must be a list of ["user turn", "assistant turn"] pairs, earliest first'
    if history and split != "train":
        return "multi_turn_prompt", (
            f'a {split} prompt has a "history": held-out prompts are one turn; move the dialogue to a train source'
        )
    return None
