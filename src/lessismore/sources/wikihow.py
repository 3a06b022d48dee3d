"""wikiHow CSV -> one Example per article: "How to <title>?" and the article's steps as a markdown list.

Sits under sources/ (format "wikihow_csv"). Two published shapes are read, told apart by the header:
  steps:   title,heading,paragraph  (one row per step, as scraped from the article pages)
  summary: title,result             (one row per numbered-step summary or bullet list, as in wikihow_lists)
Rows of one article (same title) are gathered wherever they are in the file. LIMA used the title as the prompt.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from lessismore.errors import BadValue
from lessismore.records import Dropped, Example, Prompt
from lessismore.sources.common import SourceFile, iter_csv

SHAPES = {"steps": ("title", "heading", "paragraph"), "summary": ("title", "result")}
# the scraped pages' citation tooltips: "[3] X Research source", "[4] X Trustworthy Source <who> Go to source", ...
_CITATION = re.compile(
    r"\s*\[\d+\]\s*X (?:Research source|Trustworthy Source .*? Go to source|Expert Source .*? Expert Interview\."
    r"(?: \d{1,2} \w+ \d{4}\.)?)",
    re.IGNORECASE,
)
_ACCEPTED = " or ".join(",".join(c) for c in SHAPES.values())


def read_wikihow_csv(path: str, source: str, license: str, split: str) -> Iterator[Example | Prompt | Dropped]:
    src = SourceFile(source=source, path=str(path), license=license, split=split, format="wikihow_csv")
    rows = iter_csv(src)
    for item in rows:  # the first readable row is the header
        if isinstance(item, Dropped):
            yield item
            continue
        shape, columns = detect_shape(item[1], src.path)
        break
    else:
        raise BadValue(f"{src.path}: empty file; expected a header, one of: {_ACCEPTED}")
    articles: dict[str, list[tuple[int, list[str]]]] = {}  # title -> [(line, cells)] in file order
    for item in rows:
        if isinstance(item, Dropped):
            yield item
        elif not item[1][columns[0]].strip():
            yield src.drop("missing_title", item[0], f"{src.at(item[0])}: empty title; fill it or delete the row")
        elif not item[1][columns[-1]].strip():  # a step (or summary) with no text: the rest of the article stays
            detail = f"{src.at(item[0])}: the row has a title but no text; write the step or delete the row"
            yield src.drop("empty_step", item[0], detail, {"raw": ",".join(item[1])[:2000]})
        else:
            cells = [item[1][c] for c in columns]
            articles.setdefault(cells[0].strip(), []).append((item[0], cells[1:]))
    for title, parts in articles.items():
        meta = {"title": title, "shape": shape, "n_rows": len(parts)}
        lines = line_ranges([line for line, _ in parts])
        yield src.record([title_to_prompt(title), _article(shape, [cells for _, cells in parts])], lines, meta)


def detect_shape(header: list[str], path: str) -> tuple[str, list[int]]:
    """The header -> (shape name, index of each of its columns); extra columns are allowed and ignored."""
    names = [h.strip().lower() for h in header]
    for shape, columns in SHAPES.items():
        if all(c in names for c in columns):
            return shape, [names.index(c) for c in columns]
    raise BadValue(f"{path}: unknown wikiHow CSV header {','.join(header)!r}; accepted headers: {_ACCEPTED}")


def title_to_prompt(title: str) -> str:
    """A page title -> the question a user would ask (LIMA used the title as the prompt).

    >>> title_to_prompt("How to Soothe a Sore Ankle: 13 Steps (with Pictures) - wikiHow")
    'How to Soothe a Sore Ankle?'
    >>> title_to_prompt("3 Ways to Use Italics - wikiHow"), title_to_prompt("Beat 'Halo: Reach'")
    ('How to Use Italics?', "How to Beat 'Halo: Reach'?")
    """
    core = re.sub(r"\s*-\s*wikiHow\s*$", "", title.strip(), flags=re.IGNORECASE)
    core = re.sub(r"\s*\(with Pictures\)", "", core, flags=re.IGNORECASE)
    page = re.match(r"(?:how to|\d+\+?\s+(?:\w+\s+)?ways to)\s+(.*)", core, flags=re.IGNORECASE)
    if page:  # a page title: "How to X: 13 Steps", "3 Ways to X"; what follows a colon is the subtitle
        core = page.group(1).split(":")[0]
    return f"How to {core.strip().rstrip('?.!')}?"


def _article(shape: str, rows: list[list[str]]) -> str:
    if shape == "steps":
        return "\n".join(_step(cells, i) for i, cells in enumerate(rows, 1))
    return "\n\n".join(_summary(cells[0]) for cells in rows)


def _step(cells: list[str], number: int) -> str:
    """One scraped step -> a numbered item; the paragraph repeats its bold heading, which is said once."""
    heading, paragraph = cells[0].strip(), " ".join(_CITATION.sub("", cells[1]).split())
    if heading and paragraph.startswith(heading):
        paragraph = paragraph[len(heading) :].strip()
    return f"{number}. **{heading}** {paragraph}".rstrip() if heading else f"{number}. {paragraph}"


def _summary(result: str) -> str:
    """ "1.  Open Word.  " / " • Pencil" lines -> "1. Open Word." / "- Pencil"; other lines (sub-titles) kept."""
    lines = []
    for line in result.strip().splitlines():
        line = " ".join(line.split())
        lines.append("- " + line[1:].strip() if line.startswith("•") else re.sub(r"^(\d+\.)\s*", r"\1 ", line))
    return "\n".join(lines)


def line_ranges(lines: list[int]) -> str:
    """[2, 3, 4, 9] -> "2-4,9": an article's rows as the file's line numbers, compactly.

    >>> line_ranges([2, 3, 4, 9]), line_ranges([7])
    ('2-4,9', '7')
    """
    spans: list[list[int]] = []
    for n in lines:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ",".join(f"{a}-{b}" if a != b else str(a) for a, b in spans)
