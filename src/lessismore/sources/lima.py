"""GAIR/lima JSONL -> Examples: `{"conversations": ["user turn", "assistant turn", ...], "source": "..."}`.

Sits under sources/ (format "lima_jsonl"): the shape of LIMA's released train.jsonl, of this project's
hand-written source, and of GAIR/lima read through hf:// (`lima_row` converts one object, from either). Turns
alternate user / assistant starting with the user; multi-turn is allowed. A dev/test source in this shape gives
Prompts of the first turn (LIMA's test.jsonl holds one-turn conversations).
Empty turns are kept on purpose: validation, not ingest, judges content.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from lessismore.sources.common import Record, SourceFile, read_jsonl_rows


def read_lima_jsonl(path: str, source: str, license: str, split: str) -> Iterator[Record]:
    src = SourceFile(source=source, path=str(path), license=license, split=split, format="lima_jsonl")
    return read_jsonl_rows(src, lima_row)


def lima_row(src: SourceFile, row: int, obj: dict[str, Any]) -> Record:
    """One {"conversations": [...], "source": ...} object (a file line or a dataset row) -> a record or a Dropped."""
    problem = check_conversation(obj.get("conversations"), src.split)
    if problem:
        return src.drop(problem[0], row, f"{src.at(row)}: {problem[1]}", obj)
    turns = obj["conversations"]
    return src.record(turns, row, {"source": obj.get("source") or "", "n_turns": len(turns)})


def check_conversation(turns: Any, split: str) -> tuple[str, str] | None:
    """(reason, what is wrong and how to fix it) for a conversation that cannot become a record, else None.

    >>> check_conversation(["hi", "hello"], "train") is None, check_conversation(["hi"], "test") is None
    (True, True)
    >>> check_conversation(["hi"], "train")[0], check_conversation([], "train")[0], check_conversation("x", "dev")[0]
    ('odd_turns', 'empty_conversation', 'bad_shape')
    """
    if not isinstance(turns, list) or not all(isinstance(t, str) for t in turns):
        return "bad_shape", 'needs "conversations": a list of strings (user, assistant, user, ...)'
    if not turns:
        return "empty_conversation", '"conversations" is empty; add the user turn and its answer, or delete the line'
    if split == "train" and len(turns) % 2:
        return "odd_turns", f"{len(turns)} turns: a training conversation must end with the assistant's answer"
    return None
