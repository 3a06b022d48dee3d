"""Exact prompt deduplication: the second step of curate, after the filters.

Two examples that ask the same thing (same prompt after records.normalise and casefold) teach the model one
prompt twice; the first in input order is kept and each later one is dropped with reason
"duplicate_prompt:<kept id>". Near-duplicates (MinHash) and test-set decontamination come in a later issue and
go here with the same (kept, dropped) shape.
"""

from __future__ import annotations

from lessismore.records import Example, normalise


def prompt_key(example: Example) -> str:
    """What two prompts must share to count as the same: text after NFC, whitespace collapsing and casefold.

    >>> from lessismore.records import Message, Origin
    >>> a = Example((Message("user", "  What IS  DVC?"),), Origin("s", "f", "1"))
    >>> prompt_key(a)
    'what is dvc?'
    """
    return normalise(example.prompt).casefold()


def dedup_prompts(examples: list[Example]) -> tuple[list[Example], list[tuple[Example, str]]]:
    """Keep the first example of each prompt; return (kept, [(dropped example, "duplicate_prompt:<kept id>")])."""
    first: dict[str, Example] = {}
    kept: list[Example] = []
    dropped: list[tuple[Example, str]] = []
    for ex in examples:
        key = prompt_key(ex)
        if key in first:
            dropped.append((ex, f"duplicate_prompt:{first[key].id}"))
        else:
            first[key] = ex
            kept.append(ex)
    return kept, dropped
