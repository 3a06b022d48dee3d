"""r/WritingPrompts CSV -> Examples: the prompt is the user turn, a human story written for it the answer.

Sits under sources/ (format "writingprompts_csv"). The CSV needs `prompt` and `story` columns; `row_id` (the
pool's subsets have row_id,prompt,story,completion) becomes the origin row when present. The `completion` column
of those subsets is a gpt-3.5 story and is not read: LIMA trained on the human ones. `writingprompts_row` converts
one row, from a CSV or an hf:// dataset.

Post tags ("[ WP ]", "[WP]", "[ EU ]", "[ CW ]"...) are cut from the prompt and kept in meta["tags"]; posts whose
tag says they are no story prompt (off-topic, meta, mod posts, critique threads) are dropped with the reason.
Fan et al. (2018) released the texts tokenised ("do n't", " , ", "`` ''" quotes, "<newline>"): `detokenize`
writes them back as prose.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from lessismore.errors import BadValue
from lessismore.records import Dropped
from lessismore.sources.common import Record, SourceFile, iter_csv

# tags whose posts are no story prompt, so their replies are no stories written for one (the subreddit's tags)
NOT_PROMPTS = {
    "OT": "an off-topic discussion",
    "META": "a post about the subreddit",
    "MODPOST": "a moderator announcement",
    "CC": "a request for critique (the replies are critiques)",
    "PI": "a story posted for feedback (the replies are comments on it)",
}
_TAG = r"\[\s*([A-Za-z]{2,8})\s*\]"  # "[ WP ]", "[WP]", "[ Modpost ]"
_LEADING, _TRAILING = re.compile(rf"^\s*{_TAG}\s*"), re.compile(rf"\s*{_TAG}\s*$")
_DETOKENIZE = [  # (text it needs, pattern, replacement), in order: a pattern whose text is absent is not run
    ("<newline>", re.compile(r"\s*<newline>\s*"), "\n"),
    ("``", re.compile(r"``\s*"), '"'),  # `` opens a quote ...
    ("''", re.compile(r"\s*''"), '"'),  # ... '' closes it
    ("“", re.compile(r"“\s+"), "“"),  # curly quotes, spaced the same way
    ("”", re.compile(r"\s+”"), "”"),
    (" n't", re.compile(r"(\w) n't\b"), r"\1n't"),  # do n't, ca n't, wo n't
    (" '", re.compile(r"(\w) '(s|re|ve|ll|d|m)\b", re.IGNORECASE), r"\1'\2"),  # it 's, you 're, I 'm
    (" ’", re.compile(r"(\w) ’ ?(s|t|re|ve|ll|d|m)\b"), r"\1’\2"),  # curly: doesn ’ t, menu ’ s
    ("", re.compile(r"[ \t]+([.,!?;:%)\]}])"), r"\1"),  # no space before closing punctuation
    ("", re.compile(r"([(\[{$])[ \t]+"), r"\1"),  # nor after opening brackets
    ("", re.compile(r"[ \t]{2,}|\t"), " "),  # a run of blanks -> one space (a lone space is left as it is)
    ("\n", re.compile(r" +\n *|\n +"), "\n"),  # no blanks around a line break (a bare one is left as it is)
    ("\n\n\n", re.compile(r"\n{3,}"), "\n\n"),
]


def read_writingprompts_csv(path: str, source: str, license: str, split: str) -> Iterator[Record]:
    src = SourceFile(source=source, path=str(path), license=license, split=split, format="writingprompts_csv")
    rows = iter_csv(src)
    header: list[str] = []
    for item in rows:
        if isinstance(item, Dropped):
            yield item
            continue
        if not header:
            header = [h.strip().lower() for h in item[1]]
            needed = ("prompt", "story") if split == "train" else ("prompt",)
            missing = [c for c in needed if c not in header]
            if missing:
                raise BadValue(
                    f"{src.path}: no {' or '.join(missing)} column in the header {','.join(item[1])!r}; "
                    "a WritingPrompts CSV has prompt,story (row_id optional); check the file and the source's format"
                )
            continue
        yield writingprompts_row(src, item[0], dict(zip(header, item[1], strict=True)))


def writingprompts_row(src: SourceFile, row: int, obj: dict[str, Any]) -> Record:
    """One {"prompt", "story", "row_id"?} row -> a record; off-topic and meta posts -> a Dropped with the tag."""
    prompt, story = obj.get("prompt"), obj.get("story")
    rid = row if obj.get("row_id") in (None, "") else obj["row_id"]
    if not isinstance(prompt, str) or (src.split == "train" and not isinstance(story, str)):
        detail = f'{src.at(row)}: needs "prompt" and "story" texts; fill them or delete the row'
        return src.drop("bad_shape", rid, detail, obj)
    text, tags = split_tags(prompt)
    off = [t for t in tags if t in NOT_PROMPTS]
    if off:
        detail = (
            f"{src.at(row)}: tagged [{off[0]}]: {NOT_PROMPTS[off[0]]}, not a story prompt, so its replies are no "
            "stories for it; nothing to fix (it is skipped by design), or remove the tag if it is a prompt"
        )
        return src.drop("not_a_prompt", rid, detail, {"prompt": prompt, "tags": tags})
    meta: dict[str, Any] = {"tags": tags}
    return src.record([detokenize(text), detokenize(story or "")], rid, meta)


def split_tags(prompt: str) -> tuple[str, list[str]]:
    """Cut the post tags from both ends of a prompt -> (the prompt, its tags upper-cased, in order).

    >>> split_tags("[ WP ] [ nsfw ] A man loses a fight with a lamppost .\\n")
    ('A man loses a fight with a lamppost .', ['WP', 'NSFW'])
    >>> split_tags("[WP] Write about [ this ] . [ CW ]")
    ('Write about [ this ] .', ['WP', 'CW'])
    """
    tags, text = [], prompt.strip()
    while m := _LEADING.match(text):
        tags.append(m.group(1).upper())
        text = text[m.end() :]
    trailing = []
    while m := _TRAILING.search(text):
        trailing.insert(0, m.group(1).upper())
        text = text[: m.start()]
    return text.strip(), tags + trailing


def detokenize(text: str) -> str:
    """Undo the dataset's tokenisation (Fan et al., 2018): contractions, punctuation, quotes and <newline>.

    >>> detokenize("`` Dad , why ca n't Mom come ? '' he asked . It 's late ( again ) .")
    '"Dad, why can\\'t Mom come?" he asked. It\\'s late (again).'
    >>> detokenize("One . <newline> <newline> <newline> Two ; he doesn ’ t know : 50 % .")
    'One.\\n\\nTwo; he doesn’t know: 50%.'
    >>> detokenize("Dianne wished . \\n \\n “ She knew. ”")  # pool subsets: real newlines, half-tokenised
    'Dianne wished.\\n\\n“She knew.”'
    """
    # the 13 passes were 14% of an ingest worker's time on the 10x pool (py-spy); with the gates and the lone blanks
    # left alone, 1.9x faster on the pool's stories, with the same output there and on 200,000 random strings
    for needs, pattern, replacement in _DETOKENIZE:
        if needs in text:
            text = pattern.sub(replacement, text)
    return text.strip()
