"""The data contract: every stage reads and writes these records, nothing else.

Sits at the centre of the pipeline: sources/ make Examples and Prompts, generate/ makes Responses,
judge/ makes Judgments and Ratings. Ids are content hashes, so the same input always gives the same id,
and every record keeps its origin (source, file, row, license) and the hashes of what produced it.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import itertools
import json
import shutil
import typing
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal

import orjson

from lessismore.contract import SHARD
from lessismore.errors import BadValue

Role = Literal["system", "user", "assistant"]
Split = Literal["train", "dev", "test"]
Verdict = Literal["a", "b", "tie", "invalid"]
Grade = Literal["excellent", "pass", "fail", "invalid"]
VERDICTS: tuple[str, ...] = ("a", "b", "tie", "invalid")
GRADES: tuple[str, ...] = ("excellent", "pass", "fail", "invalid")


def normalise(text: str) -> str:
    """NFC, collapse runs of whitespace, strip: two texts that read the same hash the same.

    >>> normalise("  Hello\\n\\n  world ")
    'Hello world'
    """
    return " ".join(unicodedata.normalize("NFC", text).split())


def content_id(*parts: Any) -> str:
    """A 16-hex-digit sha256 of the JSON of `parts` (sorted keys, compact, UTF-8): stable across runs and machines.

    orjson writes it: 4 against 18 us an example's id, 6 against 26 a curate drop's (measured on the 10x pool;
    ingest and curate hash a million of each at N=50). Its bytes are json.dumps(sort_keys=True, ensure_ascii=False,
    compact)'s for every string (checked over every code point) and integer; a float is written the shortest way
    both, but orjson spells a tiny or huge one without the exponent's padding or sign (7.6e-9 against 7.6e-09) and
    NaN as null. What orjson cannot write (an integer past 64 bits, a lone surrogate) goes through json, which
    raises on the surrogate as before.

    >>> content_id("a", 1) == content_id("a", 1) != content_id("a", 2)
    True
    >>> content_id(["é", {"b": 1, "a": 2}]) == content_id(["é", {"a": 2, "b": 1}])
    True
    """
    try:
        blob = orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]


@dataclass(frozen=True)
class Origin:
    """Where a record came from: enough to find the exact row again and to honour its license."""

    source: str  # the source's name in params.yaml (ingest.sources[].name)
    file: str  # path (or s3:// / hf:// URI) of the file it was read from
    row: str  # row number, line number or post id inside that file
    license: str = ""


@dataclass(frozen=True)
class Message:
    role: Role
    content: str


@dataclass(frozen=True)
class Example:
    """One training conversation (LIMA: a prompt and its response; multi-turn allowed)."""

    messages: tuple[Message, ...]
    origin: Origin
    meta: dict[str, Any] = field(default_factory=dict)  # source-specific facts: score, site, tags, title...
    id: str = ""

    def __post_init__(self) -> None:
        if not self.id:
            object.__setattr__(self, "id", example_id(self.messages))

    @property
    def prompt(self) -> str:
        return next((m.content for m in self.messages if m.role == "user"), "")

    @property
    def response(self) -> str:
        return next((m.content for m in reversed(self.messages) if m.role == "assistant"), "")


def example_id(messages: Iterable[Message]) -> str:
    return content_id([[m.role, normalise(m.content)] for m in messages])


@dataclass(frozen=True)
class Prompt:
    """A held-out prompt (test or dev) that models answer and judges compare answers to."""

    text: str
    split: Split
    origin: Origin
    meta: dict[str, Any] = field(default_factory=dict)
    id: str = ""

    def __post_init__(self) -> None:
        if not self.id:
            object.__setattr__(self, "id", content_id(normalise(self.text)))


@dataclass(frozen=True)
class Response:
    """One model's answer to one prompt, keyed by everything that produced it."""

    prompt_id: str
    model: str  # the name the report uses ("finetuned", "base", or a baseline's name)
    checkpoint: str  # content hash of the weights (or a baseline file's hash)
    text: str
    decoding: dict[str, Any]  # top_p, temperature, repetition_penalty, max_new_tokens, seed
    meta: dict[str, Any] = field(default_factory=dict)  # new_tokens, finish_reason, seconds
    id: str = ""

    def __post_init__(self) -> None:
        if not self.id:
            object.__setattr__(self, "id", content_id(self.model, self.checkpoint, self.prompt_id, self.decoding))


@dataclass(frozen=True)
class Judgment:
    """One pairwise verdict in one order: `a` means the answer shown first was better."""

    prompt_id: str
    judge: str
    template: str  # sha of the prompt template text
    order: Literal["ab", "ba"]  # ab: candidate shown as A; ba: candidate shown as B
    response_a: str  # Response.id shown as A
    response_b: str  # Response.id shown as B
    model_a: str
    model_b: str
    verdict: Verdict
    raw: str = ""  # the judge's raw reply (or its scores), kept for audit
    meta: dict[str, Any] = field(default_factory=dict)
    id: str = ""

    def __post_init__(self) -> None:
        if not self.id:
            ident = (self.judge, self.template, self.order, self.prompt_id, self.response_a, self.response_b)
            object.__setattr__(self, "id", content_id(*ident))


@dataclass(frozen=True)
class Rating:
    """An absolute grade of one response (LIMA Figure 3: excellent / pass / fail)."""

    prompt_id: str
    response: str  # Response.id
    model: str
    judge: str
    template: str
    grade: Grade
    raw: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    id: str = ""

    def __post_init__(self) -> None:
        if not self.id:
            object.__setattr__(self, "id", content_id(self.judge, self.template, self.response))


@dataclass(frozen=True)
class Dropped:
    """A record a stage refused, with why: written to data/quarantine/<stage>.jsonl, never silently lost."""

    stage: str  # ingest | validate | curate | ...
    reason: str  # short machine-readable code, e.g. "too_short", "duplicate_of:<id>", "malformed_xml"
    origin: Origin
    detail: str = ""  # the human sentence: what was wrong and how to fix it
    record: dict[str, Any] = field(default_factory=dict)  # the record as parsed, or {"raw": "<text>"}; long texts cut
    id: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "record", _excerpts(self.record))  # a 3 MB answer is not copied into a quarantine
        if not self.id:
            object.__setattr__(self, "id", content_id(self.stage, self.reason, _plain(self.origin), self.record))


EXCERPT_CHARS = 2000  # a quarantined text longer than twice this keeps its start and its size (the file has it all)


def _excerpts(value: Any) -> Any:
    """`value` with every string longer than 2 * EXCERPT_CHARS cut to its first EXCERPT_CHARS and its size.

    >>> cut = _excerpts({"raw": "x" * 5000, "n": 1})["raw"]
    >>> len(cut), cut[-40:]
    (2040, '... [excerpt: 2,000 of 5,000 characters]')
    """
    kind = type(value)  # exact types first: this runs on every value of every quarantined record
    if kind is str:
        if len(value) <= 2 * EXCERPT_CHARS:
            return value
        return f"{value[:EXCERPT_CHARS]}... [excerpt: {EXCERPT_CHARS:,} of {len(value):,} characters]"
    if kind is dict:  # rebuilt only where something was cut (most records have nothing long: no copy)
        cut = {k: c for k, v in value.items() if (c := _excerpts(v)) is not v}
        return {**value, **cut} if cut else value
    if kind is list or kind is tuple:
        items = [_excerpts(v) for v in value]  # a tuple becomes a list, as JSON reads it back
        return items if kind is tuple or any(c is not v for c, v in zip(items, value, strict=True)) else value
    if isinstance(value, str | dict | list | tuple):  # a subclass: the same, the slow way
        return _excerpts(
            str(value) if isinstance(value, str) else dict(value) if isinstance(value, dict) else list(value)
        )
    return value


Record = Example | Prompt | Response | Judgment | Rating | Dropped


# ----------------------------------------------------------------------------------------------------------------
# (de)serialisation: plain dicts, jsonl and parquet


def to_dict(record: Record) -> dict[str, Any]:
    """The record as plain dicts, lists and tuples (what dataclasses.asdict gives, copies included).

    Our own walk rather than asdict: asdict goes through copy.deepcopy for every leaf, 54 us an Example of the
    real pool against 9 us here (measured on 5,000), and curate writes a million drops at N=50 scale.
    """
    return _plain(record)


_LEAVES = (str, int, float, bool, type(None))


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


@functools.cache
def _known(cls: type) -> frozenset[str]:
    return frozenset(_field_names(cls))


def _plain(value: Any) -> Any:
    kind = type(value)
    if kind in _LEAVES:
        return value
    if hasattr(kind, "__dataclass_fields__"):
        return {name: _plain(getattr(value, name)) for name in _field_names(kind)}
    if kind is dict:
        return {k: _plain(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return kind(_plain(v) for v in value)
    return copy.deepcopy(value)


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a record from `to_dict` output; the stored id is kept (and checked for Examples/Prompts)."""
    known = _known(cls)
    kwargs = {k: v for k, v in data.items() if k in known}
    if "origin" in kwargs and isinstance(kwargs["origin"], dict):
        kwargs["origin"] = Origin(**kwargs["origin"])
    if "messages" in kwargs:
        kwargs["messages"] = tuple(Message(**m) if isinstance(m, dict) else m for m in kwargs["messages"])
    if isinstance(kwargs.get("meta"), str):
        kwargs["meta"] = json.loads(kwargs["meta"])
    if isinstance(kwargs.get("decoding"), str):
        kwargs["decoding"] = json.loads(kwargs["decoding"])
    return cls(**kwargs)


class JsonlSink:
    """Records (or plain dicts) streamed into a JSONL file, one JSON object a line (sorted keys); parents created.

    `keep_bytes` reopens a file a killed run left: it is cut back to that length (a size() the run checkpointed) and
    appended to, so the lines written after that checkpoint are written once, not twice."""

    def __init__(self, path: str | Path, keep_bytes: int | None = None) -> None:
        self.path, self.count = Path(path), 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if keep_bytes is None:
            self._fh = self.path.open("wb")
        else:
            with self.path.open("r+b") as fh:
                fh.truncate(keep_bytes)
            self._fh = self.path.open("ab")

    def size(self) -> int:
        """Bytes written so far, flushed to the OS first (a killed process loses nothing it flushed)."""
        self._fh.flush()
        return self.path.stat().st_size

    def write(self, row: Record | dict[str, Any]) -> None:
        self.write_line(json_line(row))

    def write_line(self, line: bytes) -> None:
        """One line `json_line` made (in a worker process, say: curate's drops travel as their lines)."""
        self._fh.write(line)
        self.count += 1

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> JsonlSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_JSONL = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_APPEND_NEWLINE


def json_line(row: Record | dict[str, Any]) -> bytes:
    """A record (or plain dict) as one JSONL line, UTF-8, keys sorted: the JSON of `to_dict(row)`, without the copy
    (the encoder asks `_fields` for each dataclass it meets). orjson, not json: a curate drop in 0.7 against 11 us
    (measured; a 1M-row pool quarantines most of its rows). Compact separators; NaN is null. What orjson cannot
    write (an integer past 64 bits in a source's row) goes through json, as content_id does."""
    try:
        return orjson.dumps(row, default=_fields, option=_JSONL)
    except TypeError:
        plain = to_dict(row) if is_dataclass(row) else row
        return (json.dumps(plain, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def _fields(value: Any) -> dict[str, Any]:
    if not hasattr(type(value), "__dataclass_fields__"):
        raise TypeError(f"{type(value).__name__} is not JSON serializable")
    return {name: getattr(value, name) for name in _field_names(type(value))}


def write_jsonl(path: str | Path, rows: Iterable[Record | dict[str, Any]]) -> int:
    """Write records (or plain dicts) one JSON object a line; returns how many. Parent dirs are created."""
    with JsonlSink(path) as sink:
        for row in rows:
            sink.write(row)
    return sink.count


def append_jsonl(path: str | Path, rows: Iterable[Record | dict[str, Any]]) -> int:
    """Append and flush line by line, so a crash loses at most the line being written.

    A torn last line left by an earlier crash is cut off first: it was never a whole record, and appending after it
    would glue the next record onto it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _drop_torn_tail(path)
    n = 0
    with path.open("ab") as fh:
        for row in rows:
            fh.write(json_line(row))
            fh.flush()
            n += 1
    return n


def _drop_torn_tail(path: Path) -> None:
    if not path.exists() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if not data.endswith(b"\n"):
        path.write_bytes(data[: data.rfind(b"\n") + 1])


def iter_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """Yield each line's object, reading a line at a time. A torn last line (a crash mid-write) is skipped; any other
    bad line raises."""
    path = Path(path)
    if not path.exists():
        return
    with path.open(encoding="utf-8", newline="\n") as fh:
        for i, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                if not any(rest.strip() for rest in fh):  # torn tail from an interrupted append: not there yet
                    return
                raise BadValue(f"{path}:{i}: not valid JSON ({err.msg}); fix or delete that line") from err
            yield obj


def read_jsonl(path: str | Path, cls: type) -> list[Any]:
    return [from_dict(cls, row) for row in iter_jsonl(path)]


def write_json(path: str | Path, obj: dict[str, Any]) -> None:
    """A metrics / metadata file: indented, sorted keys (stable diffs for `dvc metrics diff` and git)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


_JSON_COLUMNS = ("meta", "decoding")  # free-form dicts are stored as JSON text so the parquet schema stays fixed
ROW_GROUP_ROWS = 1024  # rows a Parquet writer buffers before it writes them as one row group: bounds its memory,
# and, fixed, makes the same records give the same bytes (the file format's constant, not a tunable of the run)


def arrow_schema(cls: type) -> Any:
    """The Parquet (Arrow) schema of a record type, from its dataclass fields: nested dataclasses are structs,
    tuples of them lists, free-form dicts JSON text. A fixed schema: every shard of a table has the same one."""
    import pyarrow as pa

    def arrow_type(tp: Any) -> Any:
        if is_dataclass(tp):
            return pa.struct(arrow_fields(tp))
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin is tuple:
            return pa.list_(arrow_type(args[0]))
        return {int: pa.int64(), float: pa.float64(), bool: pa.bool_()}.get(tp, pa.string())  # str, Literal, dict

    def arrow_fields(tp: type) -> list[tuple[str, Any]]:
        hints = typing.get_type_hints(tp)
        return [(f.name, arrow_type(hints[f.name])) for f in fields(tp)]

    return pa.schema(arrow_fields(cls))


def _row(rec: Record) -> dict[str, Any]:
    """A record as the dict of its Arrow row: `to_dict`, with its free-form dicts as JSON text (not copied first:
    ingest writes a million rows at N=50)."""
    row = {}
    for name in _field_names(type(rec)):
        value = getattr(rec, name)
        row[name] = json.dumps(value, ensure_ascii=False, sort_keys=True) if name in _JSON_COLUMNS else _plain(value)
    return row


class ParquetSink:
    """Records of one type streamed into one Parquet file, ROW_GROUP_ROWS at a time (pyarrow's ParquetWriter): every
    row group but the last holds exactly ROW_GROUP_ROWS rows, however the rows came (one record at a time or in
    Arrow tables), so the same rows give the same bytes and a row group can be read on its own.

    The file is written whole even with no rows (an empty table with the schema), so a reader always finds one.
    """

    def __init__(self, path: str | Path, cls: type) -> None:
        import pyarrow.parquet as pq

        self.path, self.count = Path(path), 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._schema = arrow_schema(cls)
        self._writer = pq.ParquetWriter(self.path, self._schema)
        self._rows: list[dict[str, Any]] = []  # records not yet in a table
        self._tables: list[Any] = []  # rows waiting for a full row group, in order
        self._waiting = 0

    def write(self, rec: Record) -> None:
        self._rows.append(_row(rec))
        self.count += 1
        if self._waiting + len(self._rows) >= ROW_GROUP_ROWS:
            self._flush()

    def write_table(self, table: Any) -> None:
        """Records already in Arrow form (`to_table`, or rows read from a table of this type), appended in order."""
        self._tabled()
        self._tables.append(table.cast(self._schema))
        self._waiting += table.num_rows
        self.count += table.num_rows
        if self._waiting >= ROW_GROUP_ROWS:
            self._flush()

    def _tabled(self) -> None:
        import pyarrow as pa

        if self._rows:
            self._tables.append(pa.Table.from_pylist(self._rows, schema=self._schema))
            self._waiting += len(self._rows)
            self._rows = []

    def _flush(self, last: bool = False) -> None:
        """Write every full row group waiting (and, `last`, the rest)."""
        import pyarrow as pa

        self._tabled()
        if not self._tables:
            return
        waiting = pa.concat_tables(self._tables) if len(self._tables) > 1 else self._tables[0]
        full = waiting.num_rows if last else waiting.num_rows - waiting.num_rows % ROW_GROUP_ROWS
        for start in range(0, full, ROW_GROUP_ROWS):
            group = waiting.slice(start, min(ROW_GROUP_ROWS, full - start))
            self._writer.write_table(group.combine_chunks(), row_group_size=ROW_GROUP_ROWS)
        rest = waiting.slice(full)
        self._tables, self._waiting = ([rest] if rest.num_rows else []), rest.num_rows

    def close(self) -> None:
        self._flush(last=True)
        self._writer.close()

    def __enter__(self) -> ParquetSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ShardWriter:
    """Records streamed into a folder of Parquet shards (contract.SHARD: part-00000.parquet, ...), `shard_rows`
    rows each (the last one fewer). The folder is emptied first, so no shard of an earlier, longer run survives;
    no records still give one empty shard, a valid empty table. Memory: one row group, never a shard.

    A shard is closed (whole on disk) as soon as it is full, so `finished` shards can be checkpointed; `keep` resumes
    a killed run: its first `keep` (full) shards stay, everything after them is removed."""

    def __init__(self, folder: str | Path, cls: type, shard_rows: int, keep: int = 0) -> None:
        if shard_rows < 1:
            raise BadValue(f"shard_rows is {shard_rows}; a shard holds at least one row (set data.shard_rows >= 1)")
        self.folder, self.cls, self.shard_rows, self.count = Path(folder), cls, shard_rows, keep * shard_rows
        self.shards: list[Path] = [self.folder / SHARD.format(i) for i in range(keep)]
        if self.folder.is_dir() and not keep:
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        for path in set(parquet_files(self.folder)) - set(self.shards):  # the killed run's open shard, if any
            path.unlink()
        self._sink: ParquetSink | None = None

    @property
    def finished(self) -> int:
        """Shards complete on disk: all but the open one."""
        return len(self.shards) - (self._sink is not None)

    def write(self, rec: Record) -> None:
        if self._sink is None:
            self.shards.append(self.folder / SHARD.format(len(self.shards)))
            self._sink = ParquetSink(self.shards[-1], self.cls)
        self._sink.write(rec)
        self.count += 1
        if self._sink.count == self.shard_rows:
            self._sink.close()
            self._sink = None

    def write_table(self, table: Any) -> None:
        """Records already in Arrow form, appended in order (cut at the shards' boundaries)."""
        while table.num_rows:
            if self._sink is None:
                self.shards.append(self.folder / SHARD.format(len(self.shards)))
                self._sink = ParquetSink(self.shards[-1], self.cls)
            piece = table.slice(0, self.shard_rows - self._sink.count)
            self._sink.write_table(piece)
            self.count += piece.num_rows
            table = table.slice(piece.num_rows)
            if self._sink.count == self.shard_rows:
                self._sink.close()
                self._sink = None

    def close(self) -> None:
        if not self.shards:  # no records: one empty shard, a valid empty table
            ParquetSink(self.folder / SHARD.format(0), self.cls).close()
            self.shards.append(self.folder / SHARD.format(0))
        if self._sink is not None:
            self._sink.close()
            self._sink = None

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TableShards:
    """Arrow tables of records written as a folder of Parquet shards, one table a shard (contract.SHARD names, in
    order, each in ROW_GROUP_ROWS row groups): the shards of a stage whose output shards follow its input's, as
    validate's hold each input shard's kept rows. The folder is emptied first; `keep` resumes a killed run: its
    first `keep` shards stay, any later one goes. No table at all still gives one empty shard, a valid table."""

    def __init__(self, folder: str | Path, cls: type, keep: int = 0) -> None:
        self.folder, self.cls = Path(folder), cls
        if self.folder.is_dir() and not keep:
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.shards: list[Path] = [self.folder / SHARD.format(i) for i in range(keep)]
        for path in set(parquet_files(self.folder)) - set(self.shards):
            path.unlink()
        self.count = count_rows(self.folder) if keep else 0

    @property
    def finished(self) -> int:
        return len(self.shards)

    def write_table(self, table: Any) -> None:
        self.shards.append(self.folder / SHARD.format(len(self.shards)))
        with ParquetSink(self.shards[-1], self.cls) as sink:
            sink.write_table(table)
        self.count += table.num_rows

    def close(self) -> None:
        if not self.shards:
            self.write_table(to_table([], self.cls))

    def __enter__(self) -> TableShards:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_parquet(path: str | Path, records: Iterable[Record], cls: type | None = None) -> int:
    """Write records to one Parquet file (a ParquetSink); returns how many. `cls` is needed only when `records`
    may be empty (it gives the schema; without it an empty input writes an Example table)."""
    records = iter(records)
    first = next(records, None)
    with ParquetSink(path, cls or (type(first) if first is not None else Example)) as sink:
        for rec in itertools.chain([first] if first is not None else [], records):
            sink.write(rec)
    return sink.count


def parquet_files(path: str | Path) -> list[Path]:
    """The Parquet files of a table: the file itself, or a shard folder's shards in order (by length first, so
    part-100000 comes after part-99999)."""
    path = Path(path)
    if path.is_dir():
        return sorted(path.glob("*.parquet"), key=lambda p: (len(p.name), p.name))
    return [path]


def iter_batches(path: str | Path, cls: type, batch_rows: int, skip: int = 0) -> Iterator[list[Any]]:
    """A table (one file or a shard folder) as lists of at most `batch_rows` records, in order (`iter_tables`'s
    batches as records)."""
    for table in iter_tables(path, batch_rows, skip):
        yield records_of(table, cls)


def iter_tables(path: str | Path, batch_rows: int, skip: int = 0) -> Iterator[Any]:
    """A table (one file or a shard folder) as Arrow tables of at most `batch_rows` rows, in order, a shard at a
    time (pyarrow's ParquetFile.iter_batches: only one batch is decoded at once); an empty table yields nothing.
    `skip` leaves out the first batches (a resumed run); a whole file skipped is not decoded, only its footer read
    (pyarrow's batches are full but a file's last, so a file holds ceil(rows / batch_rows) of them)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for file in parquet_files(path):
        parquet = pq.ParquetFile(file)
        in_file = -(-parquet.metadata.num_rows // batch_rows)
        if skip >= in_file:
            skip -= in_file
            continue
        for batch in parquet.iter_batches(batch_size=batch_rows):
            if skip:
                skip -= 1
                continue
            yield pa.Table.from_batches([batch])


def records_of(table: Any, cls: type) -> list[Any]:
    """The records of an Arrow table of type `cls` (as a ParquetSink wrote it), in order."""
    return [from_dict(cls, row) for row in table.to_pylist()]


def to_table(records: Iterable[Record], cls: type) -> Any:
    """Records of type `cls` as one Arrow table of its schema: what a ParquetSink would write."""
    import pyarrow as pa

    return pa.Table.from_pylist([_row(rec) for rec in records], schema=arrow_schema(cls))


def count_rows(path: str | Path) -> int:
    """The rows of a table (one file or a shard folder), from the Parquet footers: no row is read."""
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(file).metadata.num_rows for file in parquet_files(path))


def read_parquet(path: str | Path, cls: type) -> list[Any]:
    """Every record of a table (one file or a shard folder), in order."""
    return [rec for batch in iter_batches(path, cls, ROW_GROUP_ROWS) for rec in batch]
