"""Chat JSONL -> Examples with explicit roles: ShareGPT `conversations` and OpenAI `messages` (one object a line).

Sits under sources/ (formats "sharegpt_jsonl" and "openai_jsonl"; `sharegpt_row` / `openai_row` convert one
object, from a file line or an hf:// dataset row). Roles are mapped onto the contract's system / user / assistant
and kept in the file's order: whether they alternate is validate's call, not ingest's. What cannot be mapped is a
Dropped: an unknown role, tool messages and tool calls, and content parts that are not text (images, audio: we do
not train on them). A dev/test source gives a Prompt of the first user turn (a system turn before it -> meta).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from lessismore.sources.common import Record, SourceFile, read_jsonl_rows

SHAREGPT_ROLES = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "chatgpt": "assistant",
    "bard": "assistant",
    "assistant": "assistant",
}
OPENAI_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
TEXT_PARTS = ("text", "input_text", "output_text")  # chat completions' and the Responses API's text parts


def read_sharegpt_jsonl(path: str, source: str, license: str, split: str) -> Iterator[Record]:
    src = SourceFile(source=source, path=str(path), license=license, split=split, format="sharegpt_jsonl")
    return read_jsonl_rows(src, sharegpt_row)


def read_openai_jsonl(path: str, source: str, license: str, split: str) -> Iterator[Record]:
    src = SourceFile(source=source, path=str(path), license=license, split=split, format="openai_jsonl")
    return read_jsonl_rows(src, openai_row)


def sharegpt_row(src: SourceFile, row: int, obj: dict[str, Any]) -> Record:
    """{"conversations": [{"from": "human", "value": "..."}, ...], "id"?: ...} -> a record or a Dropped."""
    turns = obj.get("conversations")
    if not isinstance(turns, list) or not all(isinstance(t, dict) for t in turns):
        detail = f'{src.at(row)}: needs "conversations": a list of {{"from": "human" | "gpt", "value": "..."}}'
        return src.drop("bad_shape", row, detail, obj)
    roles, texts = [], []
    for i, turn in enumerate(turns):
        who, text = turn.get("from"), turn.get("value")
        if who not in SHAREGPT_ROLES:
            detail = f"{src.at(row)}: turn {i} is from {who!r}, not a known role; use one of {sorted(SHAREGPT_ROLES)}"
            return src.drop("unknown_role", row, detail, obj)
        if not isinstance(text, str):
            detail = f'{src.at(row)}: turn {i} has a {type(text).__name__} "value", expected a string; fix the line'
            return src.drop("bad_type", row, detail, obj)
        roles.append(SHAREGPT_ROLES[who])
        texts.append(text)
    meta = {"id": obj["id"]} if obj.get("id") is not None else {}
    return _conversation(src, row, roles, texts, obj, meta)


def openai_row(src: SourceFile, row: int, obj: dict[str, Any]) -> Record:
    """{"messages": [{"role": "user", "content": "..." | [{"type": "text", "text": "..."}]}, ...]} -> a record."""
    messages = obj.get("messages")
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        detail = f'{src.at(row)}: needs "messages": a list of {{"role": "user" | "assistant", "content": "..."}}'
        return src.drop("bad_shape", row, detail, obj)
    roles, texts = [], []
    for i, message in enumerate(messages):
        role = message.get("role")
        if role not in OPENAI_ROLES:
            what = "tool results are not trained on" if role in ("tool", "function") else "not a known role"
            detail = f"{src.at(row)}: message {i} has role {role!r}: {what}; use one of {sorted(OPENAI_ROLES)}"
            return src.drop("unknown_role", row, detail, obj)
        text = message_text(message.get("content"))
        if isinstance(text, tuple):
            reason, why = ("tool_call", "a tool call, not text") if message.get("tool_calls") else text
            detail = f"{src.at(row)}: message {i} ({role}) is {why}; we train on text only: drop it or the line"
            return src.drop(reason, row, detail, obj)
        roles.append(OPENAI_ROLES[role])
        texts.append(text)
    return _conversation(src, row, roles, texts, obj, {})


def message_text(content: Any) -> str | tuple[str, str]:
    """An OpenAI message's content -> its text, or (reason, what it is) when it is not all text.

    >>> message_text("Hi"), message_text([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}])
    ('Hi', 'a\\nb')
    >>> message_text([{"type": "image_url", "image_url": {"url": "x.png"}}])
    ('non_text_content', "a 'image_url' part")
    >>> message_text(None)
    ('bad_type', 'no text content')
    """
    if isinstance(content, str):
        return content
    if not isinstance(content, list) or not content:
        return "bad_type", "no text content"
    parts = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else type(part).__name__
        if kind not in TEXT_PARTS:
            return "non_text_content", f"a {kind!r} part"
        if not isinstance(part.get("text"), str):
            return "bad_type", f"a {kind!r} part without a string 'text'"
        parts.append(part["text"])
    return "\n".join(parts)


def _conversation(
    src: SourceFile, row: int, roles: list[str], texts: list[str], obj: dict[str, Any], meta: dict[str, Any]
) -> Record:
    """Mapped turns -> a record; a conversation with no turns, or a held-out one with no user turn, is dropped."""
    if not texts:
        return src.drop(
            "empty_conversation", row, f"{src.at(row)}: no turns; write the conversation or delete it", obj
        )
    if src.split != "train" and "user" not in roles:
        detail = f"{src.at(row)}: a {src.split} prompt needs a user turn; add it or delete the line"
        return src.drop("no_prompt", row, detail, obj)
    return src.record(texts, row, meta | {"n_turns": len(texts)}, roles)
