"""Source adapters: one module per file format, each turning a file into Examples / Prompts plus Dropped entries.

The first step of the pipeline (stages/ingest.py calls `ingest_source` once per params `ingest.sources` entry).
Every reader has the same shape, `read_<format>(path, source, license, split)`, and yields records whose origin
is (source name, file, row or post id, license) and whose meta carries "format" and "split". Train sources give
Examples; dev / test sources give Prompts. Nothing is dropped silently: what cannot be read is a Dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from lessismore.records import Dropped, Example, Prompt
from lessismore.sources.lima import read_lima_jsonl
from lessismore.sources.prompts import read_prompts_jsonl
from lessismore.sources.stackexchange import read_stackexchange_xml
from lessismore.sources.wikihow import read_wikihow_csv

Reader = Callable[[str, str, str, str], Iterator[Example | Prompt | Dropped]]

READERS: dict[str, Reader] = {
    "stackexchange_xml": read_stackexchange_xml,  # data-dump Posts.xml: top answer per question
    "wikihow_csv": read_wikihow_csv,  # title,heading,paragraph or title,result
    "lima_jsonl": read_lima_jsonl,  # GAIR/lima: {"conversations": [...], "source": ...}
    "prompts_jsonl": read_prompts_jsonl,  # {"prompt": ...} held-out prompts
}


def ingest_source(
    name: str, format: str, path: str, split: str, license: str = "", *, index: int | None = None
) -> Iterator[Example | Prompt | Dropped]:
    """Read one params `ingest.sources` entry; `index` is its position there, named in errors."""
    key = f"ingest.sources[{index}]" if index is not None else f"ingest.sources[name={name}]"
    if format not in READERS:
        raise ValueError(f"{key}.format: {format!r} is not a known source format; use one of {sorted(READERS)}")
    file = Path(path)
    if not file.is_file():
        what = "is a directory, not a file" if file.is_dir() else "does not exist"
        raise FileNotFoundError(
            f"{key}.path: {path} {what} (source {name!r}, run from {Path.cwd()}); "
            "fix the path in params.yaml (relative paths start at the repository root) or create the file"
            + (" (`dvc pull` fetches tracked sources)" if not file.exists() else "")
        )
    return READERS[format](str(path), name, license, split)
