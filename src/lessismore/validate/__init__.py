"""validate: the stage after ingest. Great Expectations suites, built from the data contract, check every record.

Row checks (contract fields, message lengths, role order, encoding, HTML leftovers) never stop the pipeline: a
failing row is quarantined as a records.Dropped naming its file, row and the fix; a later copy of an id already
kept is quarantined as "duplicate_id". Whole-table checks (every declared source still has rows, the share of
failing rows, ids unique) are what fail the stage: `ValidationReport.failures` says which source files and how
to fix them. The dev and test prompts are the eval set: every one of them must come through (`check_eval_kept`),
unless validate.allow_eval_drop says otherwise. suite.py builds the frames and expectations, docs.py runs GX and
writes its Data Docs.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lessismore.contract import quarantine
from lessismore.errors import BadValue
from lessismore.records import Dropped, Example, Prompt, to_dict
from lessismore.validate.docs import GXSession, Outcome
from lessismore.validate.suite import contract_expectations, flat_frame, row_expectations, table_expectations

__all__ = ["EvalSetShrank", "TableCheckError", "ValidationReport", "check_eval_kept", "eval_drops", "validate_records"]
_QUARANTINES = f"{quarantine('ingest')} and {quarantine('validate')}"


class TableCheckError(BadValue):
    """A whole-table expectation failed: the message names the source file(s) and the fix, one per line."""


@dataclass(frozen=True)
class ValidationReport:
    examples: list[Example]  # rows that passed, in input order
    prompts: list[Prompt]
    dropped: list[Dropped]  # every quarantined row, with reason "<expectation type>:<column>" or "duplicate_id"
    expectations: list[dict[str, Any]]  # {"suite", "expectation", "column", "success", "unexpected"}, every suite
    failures: list[str]  # the whole-table failures, each naming source file(s) and the fix

    @property
    def success(self) -> bool:
        return not self.failures

    def raise_for_failures(self) -> None:
        if self.failures:
            raise TableCheckError("\n".join(f"- {f}" for f in self.failures))


def validate_records(
    examples: list[Example],
    prompts: list[Prompt],
    *,
    sources: dict[str, str],
    min_chars: int,
    max_chars: int,
    max_quarantine_share: float,
    docs_dir: str | Path | None = None,
) -> ValidationReport:
    """Check `examples` and `prompts` against their suites; `sources` maps each declared source name to its file.

    Writes nothing but the Data Docs (only when `docs_dir` is given); everything else is in the returned report.
    """
    session = GXSession(docs_dir)
    kept: dict[str, list[Any]] = {}
    dropped: list[Dropped] = []
    table_rows: list[dict[str, Any]] = []
    summary: list[dict[str, Any]] = []
    for suite, cls, records in (("examples", Example, examples), ("prompts", Prompt, prompts)):
        frame = flat_frame(records, cls)
        checks = row_expectations(cls, min_chars, max_chars) + contract_expectations(cls)  # specific reasons first
        outcomes = session.validate(suite, frame, checks)
        summary += [_summary(suite, o) for o in outcomes]
        kept[suite] = _sort_rows(records, _row_problems(outcomes, frame), dropped, table_rows)
    import pandas as pd

    table = pd.DataFrame(table_rows, columns=["source", "file", "kept_source", "kept_id", "row_checks_failed"])
    outcomes = session.validate("whole_table", table, table_expectations(sorted(sources), max_quarantine_share))
    summary += [_summary("whole_table", o) for o in outcomes]
    failures = [_table_failure(o, table_rows, sources, max_quarantine_share) for o in outcomes if not o.success]
    if docs_dir:
        session.write_docs()
    return ValidationReport(kept["examples"], kept["prompts"], dropped, summary, failures)


def _summary(suite: str, o: Outcome) -> dict[str, Any]:
    return {
        "suite": suite,
        "expectation": o.expectation,
        "column": o.column,
        "success": o.success,
        "unexpected": o.unexpected,
    }


def _excerpt(value: Any, o: Outcome) -> str:
    """The part of a failing cell worth showing: a forbidden pattern in context, else the value cut to 80 chars."""
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


def _sort_rows(records: list[Any], problems: dict[int, list], dropped: list[Dropped], table: list[dict]) -> list[Any]:
    """Keep rows without problems (the first copy of each id), quarantine the rest; appends to dropped and table."""
    first: dict[str, Any] = {}
    for pos, rec in enumerate(records):
        where = f"{rec.origin.file} row {rec.origin.row}"
        if pos in problems:
            detail = f"{where}: " + "; ".join(text for _, text in problems[pos])
            dropped.append(Dropped("validate", problems[pos][0][0], rec.origin, detail, to_dict(rec)))
        elif rec.id in first:
            was = first[rec.id].origin
            detail = f"{where}: same content (id {rec.id}) as {was.file} row {was.row}, which is kept"
            detail += " (fix: delete one of the copies in the source)"
            dropped.append(Dropped("validate", "duplicate_id", rec.origin, detail, to_dict(rec)))
        else:
            first[rec.id] = rec
        ok = first.get(rec.id) is rec
        table.append(
            {
                "source": rec.origin.source,
                "file": rec.origin.file,
                "kept_source": rec.origin.source if ok else None,
                "kept_id": rec.id if ok else None,
                "row_checks_failed": pos in problems,
            }
        )
    return list(first.values())


def _table_failure(o: Outcome, rows: list[dict], sources: dict[str, str], max_share: float) -> str:
    """One message naming the source file(s) behind a failed whole-table expectation and how to fix them."""
    if o.column == "kept_source":
        lines = []
        for name in sorted(o.missing):
            path, n = sources.get(name, "?"), sum(r["source"] == name for r in rows)
            lines.append(
                f"source {name!r} ({path}) has no valid rows ({n} read, none passed): check that {path} exists and "
                f"parses ({_QUARANTINES} say why rows were dropped), or remove {name!r} from ingest.sources"
            )
        return "\n- ".join(lines)
    if o.column == "row_checks_failed":
        total = Counter(r["file"] for r in rows)
        bad = Counter(r["file"] for r in rows if r["row_checks_failed"])
        worst = ", ".join(f"{f} ({k} of {total[f]} rows)" for f, k in bad.most_common(3))
        return (
            f"{sum(bad.values())} of {len(rows)} rows failed the row checks, more than validate.max_quarantine_share"
            f" = {max_share:.0%}; most affected: {worst}. Fix those files (or their reader in lessismore.sources) "
            f"with the reasons in {quarantine('validate')}, or raise validate.max_quarantine_share"
        )
    files = sorted({r["file"] for r in rows if r["kept_id"] is not None})
    return f"{o.meta['problem']} in {', '.join(files)}: {o.meta['fix']}"


class EvalSetShrank(BadValue):
    """A dev or test prompt was removed (at ingest or here): the message lists each one with its reason."""


def eval_drops(dropped: list[Dropped], splits: dict[str, str]) -> list[Dropped]:
    """The dropped records of the dev and test sources (`splits`: ingest.sources name -> split), in input order."""
    return [d for d in dropped if splits.get(d.origin.source, "train") != "train"]


def check_eval_kept(lost: list[Dropped], splits: dict[str, str], allow: bool) -> str:
    """ "" when no eval prompt was lost; otherwise the list of them, raised as EvalSetShrank unless `allow`
    (validate.allow_eval_drop), when it is returned for the stage to print as a warning.

    An eval set that shrinks changes every win rate computed on it, and the prompt that vanishes is often the one
    that matters (LIMA's lima-16 asks about a <span>): so losing one is the user's decision, never silent.
    """
    if not lost:
        return ""
    shown = "\n".join(
        f"  - {splits[d.origin.source]} prompt {d.origin.file} row {d.origin.row} ({d.stage}: {d.reason}): "
        f"{d.detail or d.reason}"
        for d in lost[:20]
    )
    more = f"\n  ... and {len(lost) - 20} more" if len(lost) > 20 else ""
    message = (
        f"{len(lost)} dev/test prompt(s) were removed, so the eval set would silently shrink:\n{shown}{more}\n"
        f"fix them in their source files (reasons in {_QUARANTINES}), or set validate.allow_eval_drop: true "
        "to go on without them"
    )
    if not allow:
        raise EvalSetShrank(message)
    return message
