"""validate: the stage after ingest. Great Expectations suites, built from the data contract, check every record.

Runs shard by shard (`validate_shards`): each batch of records goes through the same suite in one GX session, and
what passes and what is quarantined is streamed out batch by batch, so memory holds one batch, the ids already
kept (a later copy of a kept id is quarantined as "duplicate_id") and counts per source file. The per-batch
outcomes are merged into one result per expectation (success: every batch passed; unexpected: their sum), and
every batch's run is one page of the same Data Docs site.
Row checks (contract fields, message lengths, role order, encoding, HTML leftovers) never stop the pipeline: a
failing row is quarantined as a records.Dropped naming its file, row and the fix. Whole-table checks (every
declared source still has rows, the share of failing rows) run once at the end on the merged counts, one row per
source file; they are what fail the stage: `failures` says which source files and how to fix them. The dev and
test prompts are the eval set: every one of them must come through (`check_eval_kept`), unless
validate.allow_eval_drop says otherwise. run.py streams the batches (`validate_shards`), suite.py builds the frames
and expectations, docs.py runs GX and writes its Data Docs, checkpoint.py saves a run after every shard so that a
killed one resumes. `validate_records` is the same on lists, in memory
(tests, small inputs).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lessismore.errors import BadValue
from lessismore.records import Dropped, Example, Prompt, records_of, to_table
from lessismore.validate.run import _QUARANTINES, TableCheckError, ValidationSummary, validate_shards

__all__ = [
    "EvalSetShrank",
    "TableCheckError",
    "ValidationReport",
    "ValidationSummary",
    "check_eval_kept",
    "eval_drops",
    "validate_records",
    "validate_shards",
]


@dataclass(frozen=True)
class ValidationReport:
    """validate_records's answer: the rows as lists, and the summary."""

    examples: list[Example]  # rows that passed, in input order
    prompts: list[Prompt]
    dropped: list[Dropped]  # every quarantined row, with reason "<expectation type>:<column>" or "duplicate_id"
    summary: ValidationSummary

    @property
    def expectations(self) -> list[dict[str, Any]]:
        return self.summary.expectations

    @property
    def failures(self) -> list[str]:
        return self.summary.failures

    @property
    def success(self) -> bool:
        return self.summary.success

    def raise_for_failures(self) -> None:
        self.summary.raise_for_failures()


class _Collect(list):
    """Records in a list: the dropped ones as they come, the kept ones a table at a time."""

    def __init__(self, cls: type = Dropped) -> None:
        super().__init__()
        self.cls = cls

    def write(self, rec: Any) -> None:
        self.append(rec)

    def write_table(self, table: Any) -> None:
        self.extend(records_of(table, self.cls))


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
    """`validate_shards` on lists, as one batch each: the kept rows and the quarantine come back as lists."""
    kept_examples, kept_prompts, dropped = _Collect(Example), _Collect(Prompt), _Collect()
    summary = validate_shards(
        [to_table(examples, Example)],
        prompts,
        kept_examples=kept_examples,
        kept_prompts=kept_prompts,
        dropped=dropped,
        sources=sources,
        min_chars=min_chars,
        max_chars=max_chars,
        max_quarantine_share=max_quarantine_share,
        docs_dir=docs_dir,
    )
    return ValidationReport(list(kept_examples), list(kept_prompts), list(dropped), summary)


class EvalSetShrank(BadValue):
    """A dev or test prompt was removed (at ingest or here): the message lists each one with its reason."""


def eval_drops(dropped: Iterable[Dropped], splits: dict[str, str]) -> list[Dropped]:
    """The dropped records of the dev and test sources (`splits`: ingest.sources name -> split), in input order
    (`dropped` may be a stream: only the eval ones are kept)."""
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
