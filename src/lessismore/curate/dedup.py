"""Exact prompt deduplication: a step of curate, after the filters.

Two examples that ask the same thing (same prompt after records.normalise and casefold) teach the model one
prompt twice; the first in input order is kept and each later one is dropped with reason
"duplicate_prompt:<kept id>". `PromptDedup` remembers a 16-byte hash of each kept prompt, not the prompt, with a
number its caller gives it (the funnel: the row's place in the spill), in two numpy arrays sorted by hash: 24 bytes
a prompt, so the funnel can stream any number of batches through it (a dict of bytes to the kept row's key took
~100 bytes a prompt, each a Python object of its own: measured at N=50 of curate_scale, 822k prompts).
"""

from __future__ import annotations

import hashlib

import numpy as np

from lessismore.records import Example, normalise

DIGEST = "S16"  # numpy's fixed-width bytes: a digest, compared and sorted as its 16 bytes


def prompt_key(example: Example) -> str:
    """What two prompts must share to count as the same: text after NFC, whitespace collapsing and casefold.

    >>> from lessismore.records import Message, Origin
    >>> a = Example((Message("user", "  What IS  DVC?"),), Origin("s", "f", "1"))
    >>> prompt_key(a)
    'what is dvc?'
    """
    return normalise(example.prompt).casefold()


class PromptDedup:
    """The prompts kept so far, over every batch. For a batch's digests (in input order), `first` says for each row
    whether an earlier row has its prompt: one of an earlier batch (`owner`: the number it was kept under) or of
    this batch (`first`: that row). `keep` then remembers the rows kept, under the caller's numbers."""

    def __init__(self) -> None:
        self._digests = np.zeros(0, dtype=DIGEST)  # sorted
        self._owners = np.zeros(0, dtype=np.int64)  # the number each digest was kept under

    def first(self, digests: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(owner, first): owner[i] is the number of the earlier batch's row with row i's prompt, -1 when none;
        first[i] the first row of this batch with it (i itself when row i is its first here). A row is new when
        owner[i] == -1 and first[i] == i."""
        distinct, at_first, inverse = np.unique(digests, return_index=True, return_inverse=True)
        at = np.searchsorted(self._digests, distinct)
        found = at < len(self._digests)
        found[found] = self._digests[at[found]] == distinct[found]
        owner = np.full(len(distinct), -1, dtype=np.int64)
        owner[found] = self._owners[at[found]]
        return owner[inverse], at_first[inverse].astype(np.int64)

    def keep(self, digests: np.ndarray, owners: np.ndarray) -> None:
        """Remember new prompts (distinct, none seen before) under the caller's numbers."""
        order = np.argsort(digests, kind="stable")  # inserted in order where several go between the same two
        digests, owners = digests[order], np.asarray(owners, dtype=np.int64)[order]
        at = np.searchsorted(self._digests, digests)
        self._digests = np.insert(self._digests, at, digests)
        self._owners = np.insert(self._owners, at, owners)


def prompt_digest(example: Example) -> bytes:
    """The 16-byte hash of `prompt_key`: what PromptDedup remembers of a prompt."""
    return hashlib.blake2b(prompt_key(example).encode("utf-8"), digest_size=16).digest()


def dedup_prompts(examples: list[Example]) -> tuple[list[Example], list[tuple[Example, str]]]:
    """Keep the first example of each prompt; return (kept, [(dropped example, "duplicate_prompt:<kept id>")])."""
    digests = np.array([prompt_digest(ex) for ex in examples], dtype=DIGEST)
    _, first = PromptDedup().first(digests)
    kept = [ex for i, ex in enumerate(examples) if first[i] == i]
    dropped = [(ex, f"duplicate_prompt:{examples[first[i]].id}") for i, ex in enumerate(examples) if first[i] != i]
    return kept, dropped
