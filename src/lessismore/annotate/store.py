"""Human judgments in SQLite: one row per submission, insert only, and the export the judge statistics read.

Sits between annotate/app.py (which calls `submit` on every click) and outputs/human_judgments.jsonl (DVC-tracked;
judge/agreement.py compares its labels with the LLM judges'). The database is in WAL mode with a busy timeout, and
every call opens its own connection, so annotators posting at once wait for each other instead of failing. Rows are
never updated or deleted (triggers refuse it): a changed mind is a new row, and `latest` takes each annotator's last
row per item. The items table holds what the export needs to name an item (prompt, models, response ids).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lessismore import records
from lessismore.annotate import GRADES, PAIRWISE_LABELS, Item
from lessismore.judge.outcome import candidate_view

BUSY_TIMEOUT_MS = 30_000  # how long a writer waits for another writer's lock before giving up
_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    key TEXT PRIMARY KEY, kind TEXT NOT NULL, prompt_id TEXT NOT NULL, models TEXT NOT NULL, responses TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS submissions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    annotator TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('pairwise', 'absolute')),
    item TEXT NOT NULL REFERENCES items(key),
    shown TEXT NOT NULL,
    label TEXT NOT NULL,
    time TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS submissions_no_update BEFORE UPDATE ON submissions
    BEGIN SELECT RAISE(ABORT, 'submissions are insert-only: add a new row instead'); END;
CREATE TRIGGER IF NOT EXISTS submissions_no_delete BEFORE DELETE ON submissions
    BEGIN SELECT RAISE(ABORT, 'submissions are insert-only: add a new row instead'); END;
"""


@contextmanager
def connect(path: str | Path) -> Iterator[sqlite3.Connection]:
    """A fresh connection (WAL, busy timeout, schema in place), committed on success and always closed."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.executescript(_SCHEMA)
        yield conn
    finally:
        conn.close()


def add_items(path: str | Path, items: Iterable[Item]) -> None:
    """Record what each item key means (insert or ignore: a key's content never changes)."""
    rows = [(it.key, it.kind, it.prompt.id, _names(it), _ids(it)) for it in items]
    with connect(path) as conn:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT OR IGNORE INTO items VALUES (?, ?, ?, ?, ?)", rows)
        conn.execute("COMMIT")


def _names(item: Item) -> str:
    return json.dumps([a.model for a in item.answers])


def _ids(item: Item) -> str:
    return json.dumps([a.id for a in item.answers])


def submit(path: str | Path, annotator: str, kind: str, item: str, shown: str, label: str) -> int:
    """Store one judgment as a new row; returns its id. `shown` is "ab"/"ba" for pairwise, "" for absolute."""
    allowed = PAIRWISE_LABELS if kind == "pairwise" else GRADES
    if label not in allowed:
        raise ValueError(f"label {label!r} is not one of {allowed} for a {kind} item")
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    with connect(path) as conn:
        cur = conn.execute(
            "INSERT INTO submissions (annotator, kind, item, shown, label, time) VALUES (?, ?, ?, ?, ?, ?)",
            (annotator, kind, item, shown, label, now),
        )
        return int(cur.lastrowid or 0)


def judged(path: str | Path, kind: str) -> dict[str, set[str]]:
    """annotator -> the item keys they have judged at least once, for one kind."""
    out: dict[str, set[str]] = {}
    with connect(path) as conn:
        rows = conn.execute("SELECT DISTINCT annotator, item FROM submissions WHERE kind = ?", (kind,)).fetchall()
        for annotator, item in rows:
            out.setdefault(annotator, set()).add(item)
    return out


def latest(path: str | Path) -> list[dict[str, Any]]:
    """Each annotator's last submission per item, with the item's prompt, models and response ids, in row order."""
    query = """
        SELECT s.id, s.annotator, s.kind, s.item, s.shown, s.label, s.time, i.prompt_id, i.models, i.responses,
               (SELECT COUNT(*) FROM submissions c WHERE c.annotator = s.annotator AND c.item = s.item)
        FROM submissions s JOIN items i ON i.key = s.item
        WHERE s.id = (SELECT MAX(m.id) FROM submissions m WHERE m.annotator = s.annotator AND m.item = s.item)
        ORDER BY s.id
    """
    with connect(path) as conn:
        rows = conn.execute(query).fetchall()
    return [_row(*row) for row in rows]


def _row(
    rid: int,
    annotator: str,
    kind: str,
    item: str,
    shown: str,
    label: str,
    time: str,
    prompt_id: str,
    models: str,
    responses: str,
    submissions: int,
) -> dict[str, Any]:
    models_, responses_ = json.loads(models), json.loads(responses)
    row: dict[str, Any] = {
        "annotator": annotator,
        "kind": kind,
        "item": item,
        "prompt_id": prompt_id,
        "shown": shown,
        "label": label,
        "time": time,
        "row": rid,
        "submissions": submissions,
    }
    if kind == "pairwise":
        view = candidate_view(shown, label)
        outcome = {1: "win", 0: "tie", -1: "loss"}.get(view, "invalid") if view is not None else "invalid"
        row.update(
            candidate=models_[0],
            baseline=models_[1],
            outcome=outcome,
            response_candidate=responses_[0],
            response_baseline=responses_[1],
        )
    else:
        row.update(model=models_[0], response=responses_[0], outcome=label)
    return row


def export(db_path: str | Path, out_path: str | Path) -> int:
    """Write outputs/human_judgments.jsonl: one line per (annotator, item), the latest judgment; returns how many.

    Pairwise lines carry the outcome from the candidate's view (win / tie / loss), absolute lines the grade.
    """
    out = Path(out_path)
    out.unlink(missing_ok=True)  # DVC may have left a link into its cache here: never write through it
    return records.write_jsonl(out, latest(db_path) if Path(db_path).exists() else [])


def human_labels(path: str | Path) -> dict[str, dict[str, str]]:
    """{annotator: {"prompt_id|baseline": win / tie / loss}} from an export: raters for judge.agreement.

    Keyed exactly as judge.summary.agreement_between keys the LLM judges' outcomes, so
    pairwise_agreement({**humans, **judges}) compares humans with each other and with the LLM judges.
    """
    out: dict[str, dict[str, str]] = {}
    for row in records.iter_jsonl(path):
        if row.get("kind") == "pairwise":
            out.setdefault(row["annotator"], {})[f"{row['prompt_id']}|{row['baseline']}"] = row["outcome"]
    return out
