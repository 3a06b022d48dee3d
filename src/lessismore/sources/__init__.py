"""Source adapters: one module per format, each turning a file (or a dataset's rows) into Examples / Prompts.

The first step of the pipeline (stages/ingest.py calls `ingest_source` once per params `ingest.sources` entry).
A path is a file, a glob (each match read as its own file, in sorted order), an s3:// URI or glob (storage.py),
or hf://owner/name (a Hugging Face dataset, offline: hf.py). Every file reader has the same shape,
`read_<format>(path, source, license, split)`; the row-shaped formats also have a row converter (ROWS) that
hf:// datasets go through. Records carry their origin (source name, file, row or post id, license) and meta
"format" and "split". Train sources give Examples; dev / test sources give Prompts. Nothing is dropped
silently: what cannot be read is a Dropped.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from lessismore.errors import BadValue
from lessismore.records import Example, Prompt
from lessismore.sources.alpaca import alpaca_row, read_alpaca_json
from lessismore.sources.chat import openai_row, read_openai_jsonl, read_sharegpt_jsonl, sharegpt_row
from lessismore.sources.common import Record, RowFn
from lessismore.sources.lima import lima_row, read_lima_jsonl
from lessismore.sources.prompts import prompt_row, read_prompts_jsonl, read_prompts_txt
from lessismore.sources.stackexchange import read_stackexchange_xml
from lessismore.sources.wikihow import read_wikihow_csv
from lessismore.sources.writingprompts import read_writingprompts_csv, writingprompts_row
from lessismore.storage import expand

if TYPE_CHECKING:
    from lessismore.config import Source

Reader = Callable[[str, str, str, str], Iterator[Record]]

READERS: dict[str, Reader] = {
    "stackexchange_xml": read_stackexchange_xml,  # data-dump Posts.xml: top answer per question
    "wikihow_csv": read_wikihow_csv,  # title,heading,paragraph or title,result
    "writingprompts_csv": read_writingprompts_csv,  # [row_id,]prompt,story: [WP] tags cut, text detokenised
    "lima_jsonl": read_lima_jsonl,  # GAIR/lima: {"conversations": [...], "source": ...}
    "alpaca_json": read_alpaca_json,  # a JSON list (or JSONL) of {"instruction", "input", "output"}
    "sharegpt_jsonl": read_sharegpt_jsonl,  # {"conversations": [{"from": "human" | "gpt", "value": ...}]}
    "openai_jsonl": read_openai_jsonl,  # {"messages": [{"role": ..., "content": ...}]}
    "prompts_jsonl": read_prompts_jsonl,  # {"prompt": ...} held-out prompts
    "prompts_txt": read_prompts_txt,  # one prompt a line
}
ROWS: dict[str, RowFn] = {  # one parsed row -> a record: what hf:// datasets are read with
    "writingprompts_csv": writingprompts_row,
    "lima_jsonl": lima_row,
    "alpaca_json": alpaca_row,
    "sharegpt_jsonl": sharegpt_row,
    "openai_jsonl": openai_row,
    "prompts_jsonl": prompt_row,
}


def ingest_source(spec: Source, index: int | None = None) -> Iterator[Record]:
    """Read one params `ingest.sources` entry; `index` is its position there, named in errors.

    Path problems (no such file, a glob matching nothing, denied access, a dataset not available offline) are
    raised here, before any record is read; bad rows inside the files come out as Dropped records.
    """
    files = source_files(spec, index)
    if files is None:
        from lessismore.sources.hf import read_hf  # lazy: `datasets` is only imported for hf:// sources

        kwargs = {"source": spec.name, "license": spec.license, "split": spec.split, "format": spec.format}
        hf = {"hf_split": spec.hf_split, "hf_config": spec.hf_config or "", "key": _key(spec, index)}
        return read_hf(spec.path, ROWS[spec.format], **kwargs, **hf)
    return (rec for file in files for rec in read_file(spec, file))


def source_files(spec: Source, index: int | None = None) -> list[str] | None:
    """The files a source reads, in order (a glob's matches, or the path itself), checked to exist; None for an
    hf:// dataset. A format no reader knows, or one a dataset cannot be read in, is refused naming the key."""
    key = _key(spec, index)
    if spec.format not in READERS:
        raise BadValue(f"{key}.format: {spec.format!r} is not a known source format; use one of {sorted(READERS)}")
    if spec.path.startswith("hf://"):
        if spec.format not in ROWS:
            raise BadValue(
                f"{key}.format: {spec.format!r} cannot be read from a Hugging Face dataset ({spec.path}); "
                f"use one of {sorted(ROWS)}, or point {key}.path at the file"
            )
        return None
    return expand(spec.path, f"{key}.path", spec.name)


def read_file(spec: Source, file: str) -> Iterator[Record]:
    """One file of a source, with its own origin.file."""
    return READERS[spec.format](file, spec.name, spec.license, spec.split)


def _key(spec: Source, index: int | None) -> str:
    return f"ingest.sources[{index}]" if index is not None else f"ingest.sources[name={spec.name}]"


# ----------------------------------------------------------------------------------------------------------------
# every source, streamed: what stages/ingest.py runs


class Sink(Protocol):
    """Where streamed records go (records.ShardWriter, ParquetSink, JsonlSink, or a list's append in tests)."""

    def write(self, rec: Any) -> None: ...


@dataclass
class IngestCounts:
    """What ingest_all read: per source (examples, prompts, dropped, seconds) and the drops by reason; `reparsed`:
    what a resumed run read again to find its place (records, seconds), for the timing file."""

    per_source: dict[str, dict[str, float]] = field(default_factory=dict)
    reasons: Counter = field(default_factory=Counter)
    reparsed: dict[str, float] = field(default_factory=lambda: {"records": 0, "seconds": 0.0})

    def metrics(self) -> dict[str, Any]:
        """metrics/ingest.json (seconds go to the timing file: they differ on every run)."""
        totals = {k: sum(int(n[k]) for n in self.per_source.values()) for k in ("examples", "prompts", "dropped")}
        return {
            "counts": totals,
            "per_source": {
                name: {k: v for k, v in n.items() if k != "seconds"} for name, n in self.per_source.items()
            },
            "dropped_by_reason": dict(sorted(self.reasons.items())),
        }


Progress = Callable[[int, "Source", Counter, bool], None]  # (index, source, counts so far, done)
Checkpoint = Callable[[dict[str, Any]], None]  # the position after a finished example shard (JSON data)
PROGRESS_EVERY = 1000  # records between two progress calls: a bar's refresh must not cost more than the reading
_KINDS = {"examples": "Example", "prompts": "Prompt", "dropped": "Dropped"}


def ingest_all(
    sources: tuple[Source, ...],
    examples: Sink,
    prompts: Sink,
    dropped: Sink,
    progress: Progress,
    checkpoint: Checkpoint | None = None,
    start: dict[str, Any] | None = None,
    read: Callable[[Source, int], Iterator[Record]] | None = None,
) -> IngestCounts:
    """Stream every source in params order into the three sinks, one record at a time (memory: one record, plus
    what a reader needs: the Stack Exchange reader's two passes keep only ids). Returns the counts.

    With `checkpoint`, `examples` is a records.ShardWriter: after each shard it finishes, checkpoint gets the
    position (the source being read, its records written so far) and the counts. `start`, such a position, resumes:
    the sources before its own are not read again; its own is re-read from its first record and the records written
    before the checkpoint are skipped (re-parsing them is what resuming costs: readers keep no state to restore,
    and a Stack Exchange dump is read in two passes; `reparsed` measures it). `read(source, index)` yields a
    source's records (default `ingest_source`, here; sources/on_engine.py reads them on a Ray cluster)."""
    counts = IngestCounts(start["per_source"], Counter(start["reasons"])) if start else IngestCounts()
    at, finished = (start["source"], examples.finished) if start else (0, 0)
    for i, spec in enumerate(sources[:at]):  # read whole before the checkpoint: their counts were saved with it
        n = counts.per_source[spec.name]
        progress(i, spec, Counter({kind: int(n[k]) for k, kind in _KINDS.items()}), True)
    for i, spec in enumerate(sources[at:], at):
        begin, seen = time.perf_counter(), Counter(start["seen"] if start and i == at else {})
        progress(i, spec, seen, False)
        records = (read or ingest_source)(spec, i)
        if seen:
            next(itertools.islice(records, seen.total(), seen.total()), None)  # consume what was written
            counts.reparsed = {"records": seen.total(), "seconds": round(time.perf_counter() - begin, 3)}
        for rec in records:
            sink = examples if isinstance(rec, Example) else prompts if isinstance(rec, Prompt) else dropped
            sink.write(rec)
            seen[type(rec).__name__] += 1
            if sink is dropped:
                counts.reasons[rec.reason] += 1
            if seen.total() % PROGRESS_EVERY == 0:
                progress(i, spec, seen, False)
            if checkpoint and sink is examples and examples.finished > finished:
                finished = examples.finished
                state = {"per_source": counts.per_source, "reasons": dict(counts.reasons)}
                checkpoint(state | {"source": i, "seen": dict(seen)})
        progress(i, spec, seen, True)
        n = {k: seen[kind] for k, kind in _KINDS.items()}
        counts.per_source[spec.name] = n | {"seconds": round(time.perf_counter() - begin, 3)}
    return counts
