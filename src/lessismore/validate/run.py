"""validate_shards: the Great Expectations suites run shard by shard, their outcomes merged (see the package doc).

Sits in validate/: `validate_shards` streams each batch (an Arrow table, as read from the shards) through one
GXSession (docs.py) with the suites of suite.py, writes what passes (the batch's own rows, filtered: they are not
turned into records and back) and what is quarantined to the sinks it is given, and keeps only counts, the ids kept so
far (a later copy is quarantined as "duplicate_id") and one merged outcome per expectation in a ValidationSummary;
the whole-table suite runs once at the end on one row per source file. After each batch of examples it can hand a
`checkpoint` its state (JSON data) and that batch's GX results, and it can start from one (`Resumed`): checkpoint.py
saves and restores them for the stage.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

from lessismore.contract import quarantine
from lessismore.errors import BadValue
from lessismore.records import Dropped, Example, Prompt, from_dict, records_of, to_dict, to_table
from lessismore.validate.docs import GXSession, Outcome
from lessismore.validate.kept import KeptIds
from lessismore.validate.suite import contract_expectations, flat_frame, row_expectations, table_expectations

_QUARANTINES = f"{quarantine('ingest')} and {quarantine('validate')}"
SUITES: dict[str, type] = {"examples": Example, "prompts": Prompt}


class TableCheckError(BadValue):
    """A whole-table expectation failed: the message names the source file(s) and the fix, one per line."""


class Sink(Protocol):
    def write(self, rec: Any) -> None: ...


class TableSink(Protocol):
    def write_table(self, table: Any) -> None: ...  # a batch's kept rows, an Arrow table of the batch's schema


@dataclass
class ValidationSummary:
    """What validate_shards found, merged over every batch: counts, each expectation's outcome, the failures."""

    read: Counter = field(default_factory=Counter)  # suite -> records read
    kept: Counter = field(default_factory=Counter)  # suite -> records that passed
    batches: Counter = field(default_factory=Counter)  # suite -> batches validated
    read_by_source: Counter = field(default_factory=Counter)
    valid_by_source: Counter = field(default_factory=Counter)
    prompts_by_split: Counter = field(default_factory=Counter)  # the kept dev and test prompts
    reasons: Counter = field(default_factory=Counter)  # quarantined rows by reason
    prompt_drops: list[Dropped] = field(default_factory=list)  # the eval prompts quarantined here (few)
    expectations: list[dict[str, Any]] = field(default_factory=list)  # {"suite", "expectation", "column", ...}
    failures: list[str] = field(default_factory=list)  # the whole-table failures, each naming file(s) and the fix

    @property
    def quarantined(self) -> int:
        return self.reasons.total()

    @property
    def success(self) -> bool:
        return not self.failures

    def raise_for_failures(self) -> None:
        if self.failures:
            raise TableCheckError("\n".join(f"- {f}" for f in self.failures))

    def metrics(self, sources: Iterable[str], lost: list[Dropped], splits: dict[str, str]) -> dict[str, Any]:
        """metrics/validate.json: read = counts.examples + counts.prompts + counts.quarantined, exactly."""
        return {
            "counts": {
                "examples": self.kept["examples"],
                "prompts": self.kept["prompts"],
                "quarantined": self.quarantined,
            },
            "read": {suite: self.read[suite] for suite in SUITES},
            "batches": {suite: self.batches[suite] for suite in SUITES},
            "per_source": {n: {"read": self.read_by_source[n], "valid": self.valid_by_source[n]} for n in sources},
            "dropped_by_reason": dict(sorted(self.reasons.items())),
            # the eval set as it goes on to generate and judge: every split's final count, and what it lost
            "eval": {
                split: {
                    "prompts": self.prompts_by_split[split],
                    "dropped": sum(splits[d.origin.source] == split for d in lost),
                }
                for split in ("dev", "test")
            },
            "expectations": self.expectations,
            "success": self.success,
        }


Progress = Callable[[str, int, int], None]  # (suite, batches done, records done)


@dataclass(frozen=True)
class Checked:
    """One batch through its suite: each expectation's outcome, each failing row's problems, the GX results (the
    Data Docs' pages of this batch, as GXSession.new_results gives them)."""

    outcomes: list[Outcome]
    problems: dict[int, list[tuple[str, str]]]  # row position -> [(reason code, "problem (fix: ...)")]
    results: dict[str, str] = field(default_factory=dict)


def suite_checks(suite: str, min_chars: int, max_chars: int) -> list[Any]:
    """The row expectations of a suite ("examples" or "prompts"), specific reasons first: a row's first failed check
    is its reason."""
    cls = SUITES[suite]
    return row_expectations(cls, min_chars, max_chars) + contract_expectations(cls)


def check_batch(session: GXSession, checks: list[Any], suite: str, table: Any, label: str) -> Checked:
    """Run `checks` (suite `suite`) on one batch (an Arrow table of the suite's records) in `session`: a pure
    function of the batch, so it runs in this process, a worker process or a cluster worker alike."""
    frame = flat_frame(table, SUITES[suite])
    outcomes = session.validate(suite, frame, checks, batch=label)
    return Checked(outcomes, _row_problems(outcomes, frame))


CheckBatches = Callable[[Iterable[tuple[Any, str]]], Iterable[Checked]]  # (batch table, label) -> Checked, in order


def _elsewhere(labelled: Iterable[tuple[Any, str]], check: CheckBatches, session: GXSession) -> Iterable:
    """(batch, Checked) in order from `check`, which is fed the (batch, label) pairs as it asks for them; each
    batch's GX results are stored in `session`, so the one Data Docs site shows the batches checked elsewhere."""
    pending: deque[Any] = deque()

    def feed() -> Iterable[tuple[Any, str]]:
        for batch, label in labelled:
            pending.append(batch)
            yield batch, label

    for result in check(feed()):
        session.restore(result.results)
        yield pending.popleft(), result


Checkpoint = Callable[[dict[str, Any], dict[str, str]], None]  # (the run's state, the GX results of the batch)


@dataclass(frozen=True)
class Resumed:
    """Where a killed validate_shards run stood after its last checkpointed batch of examples."""

    state: dict[str, Any]  # what `checkpoint` was given: counts, merged outcomes, per-file counters
    kept: Iterable[tuple[str, str, str]]  # (id, origin file, origin row) of every example kept before, in order
    results: dict[str, str]  # the GX results of those batches (GXSession.new_results), for the Data Docs


def validate_shards(
    example_batches: Iterable[Any],
    prompts: list[Prompt],
    *,
    kept_examples: TableSink,
    kept_prompts: TableSink,
    dropped: Sink,
    sources: dict[str, str],
    min_chars: int,
    max_chars: int,
    max_quarantine_share: float,
    docs_dir: str | Path | None = None,
    progress: Progress | None = None,
    checkpoint: Checkpoint | None = None,
    start: Resumed | None = None,
    check: CheckBatches | None = None,
) -> ValidationSummary:
    """Check every batch of examples (Arrow tables of records.Example: records.iter_tables, or records.to_table of
    a list), then the prompts (one batch: the eval set is small), with their suites; `sources` maps each declared
    source name to its file. Each batch's rows that pass go to its kept sink as one table, the rest to `dropped` as
    records.Dropped, in input order. Writes nothing else but the Data Docs (only when `docs_dir` is given).

    `checkpoint` is called after each batch of examples with the run's state (JSON data) and that batch's GX results;
    `start` resumes from such a checkpoint: `example_batches` are then the batches after it.
    `check` runs the suite on the batches of examples elsewhere (validate/on_engine.py: on a Ray cluster): it maps
    (batch, label) pairs to `Checked` results in order; the rest (ids, counts, sinks, Data Docs) stays here."""
    run = _Run(GXSession(docs_dir), min_chars, max_chars)
    if start:
        run.restore(start)
    suites = (("examples", example_batches, kept_examples), ("prompts", [to_table(prompts, Prompt)], kept_prompts))
    for suite, batches, sink in suites:
        first = run.summary.batches[suite]
        labelled = ((batch, f"batch {first + k:05d}") for k, batch in enumerate(batches))
        if check and suite == "examples":
            run.session.suite(suite, run.checks[suite])  # the Data Docs list the suite the cluster ran
            checked = _elsewhere(labelled, check, run.session)
        else:
            checked = ((batch, run.check(suite, batch, label)) for batch, label in labelled)
        for batch, result in checked:
            run.apply(suite, batch, result, sink, dropped)
            if progress:
                progress(suite, run.summary.batches[suite], run.summary.read[suite])
            if checkpoint and suite == "examples":
                checkpoint(run.state(), result.results)
        if not run.summary.batches[suite]:  # an empty table still runs its suite once: its Data Docs page says so
            empty = to_table([], SUITES[suite])
            run.apply(suite, empty, run.check(suite, empty, "batch 00000"), sink, dropped)
    run.whole_table(sources, max_quarantine_share)
    if docs_dir:
        run.session.write_docs()
    return run.summary


class _Run:
    """One validate_shards call's state: the GX session, the ids kept so far, counts per source file."""

    def __init__(self, session: GXSession, min_chars: int, max_chars: int) -> None:
        self.session, self.summary = session, ValidationSummary()
        self.checks = {suite: suite_checks(suite, min_chars, max_chars) for suite in SUITES}
        self.first = {suite: KeptIds() for suite in SUITES}  # the ids kept so far, and where from
        self.files: dict[tuple[str, str], Counter] = {}  # (source, file) -> read, failed, kept
        self.merged: dict[tuple[str, str, str], dict[str, Any]] = {}

    def state(self) -> dict[str, Any]:
        """The summary and per-file counters as JSON data (the kept-id map is not in it: Resumed.kept rebuilds it)."""
        s = self.summary
        counters = {f.name: dict(getattr(s, f.name)) for f in fields(s) if isinstance(getattr(s, f.name), Counter)}
        lists = {"prompt_drops": [to_dict(d) for d in s.prompt_drops], "expectations": s.expectations}
        files = [[source, file, dict(n)] for (source, file), n in self.files.items()]
        return {"summary": counters | lists | {"failures": s.failures}, "files": files}

    def restore(self, start: Resumed) -> None:
        saved = start.state["summary"]
        for name, value in saved.items():
            setattr(self.summary, name, Counter(value) if isinstance(getattr(self.summary, name), Counter) else value)
        self.summary.prompt_drops = [from_dict(Dropped, d) for d in saved["prompt_drops"]]
        self.files = {(source, file): Counter(n) for source, file, n in start.state["files"]}
        self.merged = {(e["suite"], e["expectation"], e["column"]): e for e in self.summary.expectations}
        for key, file, row in start.kept:
            self.first["examples"].add(key, file, row)
        self.session.restore(start.results)

    def check(self, suite: str, table: Any, label: str) -> Checked:
        checked = check_batch(self.session, self.checks[suite], suite, table, label)
        return dataclasses.replace(checked, results=self.session.new_results())

    def apply(self, suite: str, table: Any, checked: Checked, kept: TableSink, dropped: Sink) -> None:
        """Merge a checked batch's outcomes, send each dropped row to the dropped sink as it comes and the kept ones
        to the kept sink, as one table of the batch's own rows. Only the dropped rows are made records."""
        import pyarrow as pa

        for o in checked.outcomes:
            self._merge(suite, o)
        ids, origins = table.column("id").to_pylist(), table.column("origin").to_pylist()
        splits = table.column("split").to_pylist() if suite == "prompts" else [""] * table.num_rows
        mask = []
        for pos, (key, origin, split) in enumerate(zip(ids, origins, splits, strict=True)):
            row = _Row(key, origin["source"], origin["file"], origin["row"], split, table, pos, SUITES[suite])
            drop = self._sort(suite, row, checked.problems.get(pos))
            if drop:
                dropped.write(drop)
            mask.append(drop is None)
        kept.write_table(table.filter(pa.array(mask, pa.bool_())))
        self.summary.batches[suite] += 1
        self.summary.read[suite] += table.num_rows

    def _sort(self, suite: str, rec: _Row, problems: list[tuple[str, str]] | None) -> Dropped | None:
        """None when `rec` is kept (no problem, the first copy of its id), else its Dropped; counts either way."""
        where, first, s = f"{rec.file} row {rec.row}", self.first[suite], self.summary
        counts = self.files.setdefault((rec.source, rec.file), Counter())
        seen = not problems and rec.id in first
        counts.update(read=1, failed=bool(problems), kept=not problems and not seen)
        s.read_by_source[rec.source] += 1
        if problems:
            reason, detail = problems[0][0], f"{where}: " + "; ".join(text for _, text in problems)
        elif seen:
            file, row = first.where(rec.id)
            reason = "duplicate_id"
            detail = f"{where}: same content (id {rec.id}) as {file} row {row}, which is kept"
            detail += " (fix: delete one of the copies in the source)"
        else:
            first.add(rec.id, rec.file, rec.row)
            s.kept[suite] += 1
            s.valid_by_source[rec.source] += 1
            if suite == "prompts":
                s.prompts_by_split[rec.split] += 1
            return None
        record = rec.record()
        drop = Dropped("validate", reason, record.origin, detail, to_dict(record))
        s.reasons[reason] += 1
        if suite == "prompts":
            s.prompt_drops.append(drop)
        return drop

    def _merge(self, suite: str, o: Outcome) -> None:
        key = (suite, o.expectation, o.column)
        if key not in self.merged:
            self.merged[key] = _summary(suite, o)
            self.summary.expectations.append(self.merged[key])
            return
        self.merged[key]["success"] &= o.success
        self.merged[key]["unexpected"] += o.unexpected

    def whole_table(self, sources: dict[str, str], max_share: float) -> None:
        """The whole-table suite on one row per source file (its counts), after every batch."""
        import pandas as pd

        rows = [
            {"source": src, "file": file, "kept_source": src if n["kept"] else None, "rows": n["read"]}
            | {"row_checks_failed": n["failed"]}
            for (src, file), n in self.files.items()
        ]
        table = pd.DataFrame(rows, columns=["source", "file", "kept_source", "rows", "row_checks_failed"])
        total = sum(r["rows"] for r in rows)
        outcomes = self.session.validate("whole_table", table, table_expectations(sorted(sources), max_share, total))
        for o in outcomes:
            self._merge("whole_table", o)
        # the share check sums a count column: its unexpected rows are the rows it summed, not frame cells
        failed = ("whole_table", "expect_column_sum_to_be_between", "row_checks_failed")
        self.merged[failed]["unexpected"] = sum(r["row_checks_failed"] for r in rows)
        self.summary.failures += [_table_failure(o, rows, sources, max_share) for o in outcomes if not o.success]


@dataclass(frozen=True)
class _Row:
    """What sorting a row reads of it, from its batch's columns; the whole record is built only when it is dropped."""

    id: str
    source: str
    file: str
    row: str
    split: str
    table: Any
    pos: int
    cls: type

    def record(self) -> Any:
        return records_of(self.table.slice(self.pos, 1), self.cls)[0]


def _summary(suite: str, o: Outcome) -> dict[str, Any]:
    return {
        "suite": suite,
        "expectation": o.expectation,
        "column": o.column,
        "success": o.success,
        "unexpected": o.unexpected,
    }


def _excerpt(value: Any, o: Outcome) -> str:
    """The part of a failing cell worth showing: a forbidden pattern in context, else the value cut to 80 chars (a
    list of items, as JSON)."""
    if isinstance(value, list):
        value = json.dumps(value, ensure_ascii=False)
    if not isinstance(value, str):
        return str(value)
    text = value
    patterns = o.kwargs.get("regex_list") or [o.kwargs.get("regex", "")]
    hits = [m for p in patterns if "not_match" in o.expectation and (m := re.search(p, text))]
    if hits:
        return repr(text[max(0, hits[0].start() - 30) : hits[0].end() + 30])
    return repr(text if len(text) <= 80 else text[:77] + "...")


def _row_problems(outcomes: list[Outcome], frame: Any) -> dict[int, list[tuple[str, str]]]:
    """Frame position -> [(reason code, "problem (fix: ...)")] in suite order: the first is the row's reason."""
    problems: dict[int, list[tuple[str, str]]] = {}
    for o in outcomes:
        for pos in o.rows:
            problem = o.meta["problem"].format(value=_excerpt(frame.at[pos, o.column], o))
            problems.setdefault(pos, []).append((f"{o.expectation}:{o.column}", f"{problem} (fix: {o.meta['fix']})"))
    return problems


def _table_failure(o: Outcome, rows: list[dict], sources: dict[str, str], max_share: float) -> str:
    """One message naming the source file(s) behind a failed whole-table expectation and how to fix them; `rows`
    are the whole-table frame's, one a source file with its counts."""
    if o.column == "kept_source":
        lines = []
        for name in sorted(o.missing):
            path, n = sources.get(name, "?"), sum(r["rows"] for r in rows if r["source"] == name)
            lines.append(
                f"source {name!r} ({path}) has no valid rows ({n} read, none passed): check that {path} exists and "
                f"parses ({_QUARANTINES} say why rows were dropped), or remove {name!r} from ingest.sources"
            )
        return "\n- ".join(lines)
    if o.column == "row_checks_failed":
        total, bad = Counter(), Counter()
        for r in rows:
            total[r["file"]] += r["rows"]
            bad[r["file"]] += r["row_checks_failed"]
        worst = ", ".join(f"{f} ({k} of {total[f]} rows)" for f, k in bad.most_common(3) if k)
        return (
            f"{bad.total()} of {total.total()} rows failed the row checks, more than validate.max_quarantine_share"
            f" = {max_share:.0%}; most affected: {worst}. Fix those files (or their reader in lessismore.sources) "
            f"with the reasons in {quarantine('validate')}, or raise validate.max_quarantine_share"
        )
    files = sorted({r["file"] for r in rows if r["kept_source"] is not None})
    return f"{o.meta['problem']} in {', '.join(files)}: {o.meta['fix']}"
