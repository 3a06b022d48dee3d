"""Rewrites that curate applies before it filters: LIMA's per-source edits, pure functions of one Example.

Sits in curate/, first step after validate. A rewrite changes the text, so the example gets a new content id;
the id it had in data/validated/ is kept in meta["rewritten_from"] and what was done in meta["rewrites"], so
`lessismore explain` and the lineage can follow it back. An example no rule touches is returned unchanged.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Literal

from lessismore.records import Example, Message

SePrompt = Literal["title_body", "title", "body"]

# LIMA (section 2.1): wikiHow articles open with "This article..."; the answer should not call itself an article.
# The sentence may open the response, a line, or a numbered step whose heading is bold ("1. **This article").
_THIS_ARTICLE = re.compile(r"(^|[\n.!?]\s*|^\s*\d+\.\s+|\n\s*\d+\.\s+)(\*\*|__)?This article\b", re.MULTILINE)


def rewrite_this_article(text: str) -> str:
    """Every sentence that starts with "This article" starts with "The following answer" instead.

    >>> rewrite_this_article("This article shows how to brew coffee.")
    'The following answer shows how to brew coffee.'
    >>> rewrite_this_article("1. **This article explains backups.** Start now. See this article too.")
    '1. **The following answer explains backups.** Start now. See this article too.'
    """
    return _THIS_ARTICLE.sub(lambda m: f"{m.group(1)}{m.group(2) or ''}The following answer", text)


def se_prompt_text(title: str, prompt: str, mode: SePrompt) -> str:
    """A Stack Exchange prompt (ingest writes "title\\n\\nbody") as title and body, the title alone, or the body.

    An empty part falls back to the other, so a prompt is never empty.

    >>> asked = "Why?\\n\\nBecause."
    >>> se_prompt_text("Why?", asked, "title"), se_prompt_text("Why?", asked, "body")
    ('Why?', 'Because.')
    >>> se_prompt_text("Why?", "Why?", "body")
    'Why?'
    """
    if mode == "title_body":
        return prompt
    body = prompt[len(title) :].strip() if title and prompt.startswith(title) else prompt
    chosen = title if mode == "title" else body
    return chosen.strip() or prompt


def _replace_turn(example: Example, role: str, new_text: str, what: str) -> Example:
    """The example with its first user turn (role "user") or last assistant turn replaced, tagged in meta."""
    messages = list(example.messages)
    order = range(len(messages)) if role == "user" else reversed(range(len(messages)))
    i = next(i for i in order if messages[i].role == role)
    if messages[i].content == new_text:
        return example
    messages[i] = Message(role=role, content=new_text)
    meta = {
        **example.meta,
        "rewritten_from": example.meta.get("rewritten_from", example.id),
        "rewrites": [*example.meta.get("rewrites", []), what],
    }
    return dataclasses.replace(example, messages=tuple(messages), meta=meta, id="")


def rewrite(example: Example, *, se_prompt: SePrompt) -> Example:
    """Apply every rule that concerns this example's format; the same object back when nothing changed."""
    fmt = example.meta.get("format")
    if fmt == "wikihow_csv" and example.response:
        example = _replace_turn(example, "assistant", rewrite_this_article(example.response), "this_article")
    if fmt == "stackexchange_xml" and se_prompt != "title_body" and example.prompt:
        text = se_prompt_text(str(example.meta.get("title", "")), example.prompt, se_prompt)
        example = _replace_turn(example, "user", text, f"se_prompt_{se_prompt}")
    return example
