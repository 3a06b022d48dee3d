"""n-gram decontamination: drop training examples that contain a dev or test prompt. A step of curate, after dedup.

The lm-eval-harness "janitor" idea (GPT-3 used 13-grams): every `ngram`-word run of every held-out prompt goes
into an index, and a training example whose text (every message, system, user and assistant) contains one of
those runs is dropped with reason "contaminated:<prompt id>". A prompt shorter than `ngram` words is indexed
whole and matched as a contiguous run of words when it has at least `min_words` words. A shorter one would match
too much ordinary text as a run, yet short prompts are the ones that recur verbatim ("Tell me a joke."), so it is
matched exactly: a user message whose words are the prompt's words, nothing more or less ("exact" in
`NgramIndex.stats`; `NgramIndex.too_short` lists those with no word at all, which cannot match), or nearly: a user
message whose word set has a Jaccard similarity of at least `similarity` with the prompt's ("Tell me a joke" and
"Tell me a joke, please": 0.8). The sets are a few words each, so the Jaccard is computed exactly, through an
inverted index from word to short prompt, rather than estimated with MinHash: exact and cheaper at this size.
Both sides go through `words`, so case, punctuation and Unicode forms never hide an overlap. Runs never span two
messages.

Lookups cost one dict probe per word position: each entry is filed under its first `key_len` words and checked in
full only on a hit (measured: ~20,000 examples of ~300 words against 1,000 prompts in ~2 s on one core).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from lessismore.errors import BadValue
from lessismore.records import Example, Prompt

_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    """NFKC, casefold, apostrophes dropped, then runs of letters and digits: every other punctuation is a break.

    >>> words("Don't PANIC: it's 4.2 km!")
    ['dont', 'panic', 'its', '4', '2', 'km']
    >>> words("  state-of-the-art\\n") == words("State of the Art")
    True
    >>> words("...")
    []
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    # apostrophes are dropped, not split on: "don't" and "dont" are the same word (replace: ~4x str.translate)
    return _WORD.findall(text.replace("'", "").replace("’", "").replace("ʼ", ""))


@dataclass(frozen=True)
class NgramIndex:
    """The held-out prompts as word runs. Build it with `build_index`; one index serves any number of examples."""

    ngram: int
    min_words: int
    key_len: int  # words in a lookup key: min(ngram, min_words), so every entry is long enough to have one
    entries: dict[tuple[str, ...], list[tuple[tuple[str, ...], str]]]  # key -> [(word run, prompt id)], prompt order
    prompts: dict[str, Prompt]  # every prompt given, by id (for the quarantine detail: split, file, row)
    exact: dict[tuple[str, ...], str] = field(default_factory=dict)  # words -> id, prompts under min_words words
    similarity: float = 1.0  # Jaccard of word sets from which a user message is a near-copy of a short prompt
    short_sets: dict[str, frozenset[str]] = field(default_factory=dict)  # short prompt id -> its word set
    by_word: dict[str, tuple[str, ...]] = field(default_factory=dict)  # word -> ids of the short prompts with it
    too_short: tuple[str, ...] = ()  # ids of prompts without a word (punctuation only): they cannot match
    stats: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Match:
    """Where an example overlaps a held-out prompt: enough to write a quarantine detail a reader can check."""

    prompt: Prompt
    message: int  # index into example.messages
    role: str
    start: int  # word offset inside that message, counted in `words(message.content)`
    words: tuple[str, ...]  # the overlapping words, normalised


def build_index(prompts: list[Prompt], *, ngram: int, min_words: int, similarity: float) -> NgramIndex:
    """Index every `ngram`-word run of every prompt (and short prompts of >= min_words words whole).

    >>> from lessismore.records import Origin
    >>> p = Prompt("Name three birds.", "test", Origin("t", "t.txt", "1"))
    >>> build_index([p], ngram=13, min_words=8, similarity=0.8).stats
    {'prompts': 1, 'indexed_ngrams': 0, 'indexed_whole': 0, 'exact': 1, 'too_short': 0, 'entries': 0}
    >>> build_index([p], ngram=2, min_words=2, similarity=0.8).stats
    {'prompts': 1, 'indexed_ngrams': 1, 'indexed_whole': 0, 'exact': 0, 'too_short': 0, 'entries': 2}
    """
    if ngram < 1:
        raise BadValue(f"curate.decontam.ngram must be >= 1 (lm-eval-harness uses 13), got {ngram}")
    key_len = max(1, min(ngram, min_words))
    entries: dict[tuple[str, ...], list[tuple[tuple[str, ...], str]]] = {}
    seen: set[tuple[tuple[str, ...], str]] = set()
    by_id: dict[str, Prompt] = {}
    too_short: list[str] = []
    exact: dict[tuple[str, ...], str] = {}
    counts = {"indexed_ngrams": 0, "indexed_whole": 0, "exact": 0}
    for prompt in prompts:
        if prompt.id in by_id:  # the same text twice (ids are content hashes): indexed once
            continue
        by_id[prompt.id] = prompt
        w = words(prompt.text)
        if len(w) >= ngram:
            runs = [tuple(w[i : i + ngram]) for i in range(len(w) - ngram + 1)]
            counts["indexed_ngrams"] += 1
        elif len(w) >= max(min_words, 1):
            runs = [tuple(w)]
            counts["indexed_whole"] += 1
        elif w:
            exact.setdefault(tuple(w), prompt.id)  # the first of two prompts with the same words names the match
            counts["exact"] += 1
            continue
        else:
            too_short.append(prompt.id)
            continue
        for run in runs:
            if (run, prompt.id) not in seen:
                seen.add((run, prompt.id))
                entries.setdefault(run[:key_len], []).append((run, prompt.id))
    stats = {"prompts": len(by_id), **counts, "too_short": len(too_short), "entries": len(seen)}
    short_sets = {pid: frozenset(w) for w, pid in exact.items()}
    by_word: dict[str, list[str]] = {}
    for pid, ws in short_sets.items():
        for word in sorted(ws):
            by_word.setdefault(word, []).append(pid)
    return NgramIndex(
        ngram,
        min_words,
        key_len,
        entries,
        by_id,
        exact,
        similarity,
        short_sets,
        {w: tuple(ids) for w, ids in by_word.items()},
        tuple(too_short),
        stats,
    )


def _near_short(w: list[str], index: NgramIndex) -> str | None:
    """The first short prompt (in index order) whose word set is at least `index.similarity` Jaccard-similar to
    `w`'s, or None. Only a message of at most twice min_words words can reach it against a shorter prompt."""
    if not index.by_word or not w or len(w) > 2 * index.min_words:
        return None
    mine = frozenset(w)
    seen: set[str] = set()
    for word in sorted(mine):
        for pid in index.by_word.get(word, ()):
            if pid in seen:
                continue
            seen.add(pid)
            theirs = index.short_sets[pid]
            if len(mine & theirs) / len(mine | theirs) >= index.similarity:
                return pid
    return None


def find_match(example: Example, index: NgramIndex, split: list[list[str]] | None = None) -> Match | None:
    """The first overlap in reading order (message by message, word by word; prompts in index order), or None.
    `split`: the messages' `words`, where the caller has them already (curate's prescreen: MinHash reads them too)."""
    k, entries, exact = index.key_len, index.entries, index.exact
    if not entries and not exact:
        return None  # (short_sets come from `exact`: none without it)
    for m, message in enumerate(example.messages):
        w = split[m] if split is not None else words(message.content)
        if message.role == "user" and (prompt_id := exact.get(tuple(w)) or _near_short(w, index)) is not None:
            return Match(index.prompts[prompt_id], m, message.role, 0, tuple(w))
        if entries.keys().isdisjoint(zip(*(w[j:] for j in range(k)), strict=False)):
            continue  # no window of the message is a key (most messages): checked in C, before the scan below
        for i in range(len(w) - k + 1):
            hits = entries.get(tuple(w[i : i + k]))
            if hits is None:
                continue
            for run, prompt_id in hits:
                if tuple(w[i : i + len(run)]) == run:
                    return Match(index.prompts[prompt_id], m, message.role, i, run)
    return None


def describe(match: Match) -> str:
    """The quarantine detail's sentence: which words of which message, and which prompt (split, file, row).

    >>> from lessismore.records import Origin
    >>> p = Prompt("Why is the sky blue at noon but red at dusk?", "test", Origin("t", "data/test.jsonl", "7"))
    >>> describe(Match(p, 1, "assistant", 40, ("why", "is", "the", "sky")))  # doctest: +ELLIPSIS
    'assistant message 1, words 40-43 "why is the sky" appear in test prompt ... (data/test.jsonl row 7)'
    """
    where = f"{match.role} message {match.message}, words {match.start}-{match.start + len(match.words) - 1}"
    origin = match.prompt.origin
    prompt = f"{match.prompt.split} prompt {match.prompt.id} ({origin.file} row {origin.row})"
    return f'{where} "{" ".join(match.words)}" appear in {prompt}'


def describe_match(example: Example, index: NgramIndex) -> str:
    """`describe(find_match(...))`, or "" when the example is clean: for the stage's quarantine detail."""
    match = find_match(example, index)
    return describe(match) if match else ""


def remove_contaminated(examples: list[Example], index: NgramIndex) -> tuple[list[Example], list[tuple[Example, str]]]:
    """Keep clean examples in input order; return (kept, [(example, "contaminated:<prompt id>")])."""
    kept: list[Example] = []
    dropped: list[tuple[Example, str]] = []
    for ex in examples:
        match = find_match(ex, index)
        if match is None:
            kept.append(ex)
        else:
            dropped.append((ex, f"contaminated:{match.prompt.id}"))
    return kept, dropped


def decontaminate(
    examples: list[Example], prompts: list[Prompt], *, ngram: int, min_words: int, similarity: float
) -> tuple[list[Example], list[tuple[Example, str]]]:
    """`remove_contaminated` against an index of `prompts` built here (build it yourself to reuse it or its stats)."""
    index = build_index(prompts, ngram=ngram, min_words=min_words, similarity=similarity)
    return remove_contaminated(examples, index)
