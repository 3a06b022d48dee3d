"""Human judgments in SQLite: one row per submission, insert only, and the export the judge statistics read.

Sits between annotate/app.py (which calls `submit` on every click) and outputs/human_judgments.jsonl (DVC-tracked;
judge/agreement.py compares its labels with the LLM judges'). The database is in WAL mode with a busy timeout, and
every call opens its own connection, so annotators posting at once wait for each other instead of failing. Rows are
never updated or deleted (triggers refuse it): a changed mind is a new row, and `latest` takes each annotator's last
row per item. The items table holds what the export needs to name an item (prompt, models, response ids).

Two keys make a submission safe to race and to retry (#7 load test). An item outside the overlap set is claimed
by its first judge in the claims table (its primary key is the item), in the same BEGIN IMMEDIATE transaction as
the row, so exactly one annotator judges it. Each row carries the submission id (`sid`) of the form it came from,
unique, so a POST retried after a lost reply is recorded once.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from lessismore import records
from lessismore.annotate import GRADES, PAIRWISE_LABELS, Item
from lessismore.judge.outcome import candidate_view

BUSY_TIMEOUT_MS = 30_000  # how long a writer waits for another writer's lock before giving up
SCHEMA_VERSION = 2  # 1 (user_version 0): items + submissions; 2: submissions.sid and the claims table
Outcome = Literal["recorded", "replayed", "taken", "reused"]
_INSERT_ONLY = "BEGIN SELECT RAISE(ABORT, '{table} are insert-only: add a new row instead'); END"
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS items (key TEXT PRIMARY KEY, kind TEXT NOT NULL, prompt_id TEXT NOT NULL, "
    "models TEXT NOT NULL, responses TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS submissions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        annotator TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('pairwise', 'absolute')),
        item TEXT NOT NULL REFERENCES items(key),
        shown TEXT NOT NULL,
        label TEXT NOT NULL,
        time TEXT NOT NULL,
        sid TEXT
    )""",
    "CREATE TABLE IF NOT EXISTS claims (item TEXT PRIMARY KEY REFERENCES items(key), kind TEXT NOT NULL, "
    "annotator TEXT NOT NULL, time TEXT NOT NULL)",
    *(
        f"CREATE TRIGGER IF NOT EXISTS {table}_no_{verb} BEFORE {verb.upper()} ON {table} "
        + _INSERT_ONLY.format(table=table)
        for table in ("submissions", "claims")
        for verb in ("update", "delete")
    ),
)
_UPGRADE = (  # after _SCHEMA; a version-1 file lacks the sid column, and its first judge of each item claims it
    "CREATE UNIQUE INDEX IF NOT EXISTS submissions_sid ON submissions (sid)",
    "CREATE INDEX IF NOT EXISTS submissions_annotator ON submissions (annotator, item)",
    "INSERT OR IGNORE INTO claims SELECT item, kind, annotator, time FROM submissions ORDER BY id",
)


@contextmanager
def connect(path: str | Path) -> Iterator[sqlite3.Connection]:
    """A fresh connection (WAL, busy timeout, schema in place), committed on success and always closed.

    The page opens one or two per request, so it does the least it can: the timeout argument sets the busy
    timeout, and WAL mode, which the file keeps, is set once, when the schema is made.
    """
    try:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    except sqlite3.OperationalError:  # "unable to open database file": a new file in a folder not made yet
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
            conn.execute("PRAGMA journal_mode = WAL")  # not inside a transaction: SQLite refuses it there
            _upgrade(conn)
        yield conn
    finally:
        conn.close()


def _upgrade(conn: sqlite3.Connection) -> None:
    """Create or upgrade the schema, once: the first connection does it while the others wait for its lock."""
    with _transaction(conn):
        if conn.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
            return
        for statement in _SCHEMA:
            conn.execute(statement)
        if "sid" not in {row[1] for row in conn.execute("PRAGMA table_info(submissions)")}:
            conn.execute("ALTER TABLE submissions ADD COLUMN sid TEXT")
        for statement in _UPGRADE:
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE (the write lock up front, so a check and the insert after it see the same database)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def add_items(path: str | Path, items: Iterable[Item]) -> None:
    """Record what each item key means (insert or ignore: a key's content never changes)."""
    rows = [(it.key, it.kind, it.prompt.id, _names(it), _ids(it)) for it in items]
    with connect(path) as conn, _transaction(conn):
        conn.executemany("INSERT OR IGNORE INTO items VALUES (?, ?, ?, ?, ?)", rows)


def _names(item: Item) -> str:
    return json.dumps([a.model for a in item.answers])


def _ids(item: Item) -> str:
    return json.dumps([a.id for a in item.answers])


def submit(
    path: str | Path,
    annotator: str,
    kind: str,
    item: str,
    shown: str,
    label: str,
    *,
    sid: str | None = None,
    claim: bool = False,
) -> Outcome:
    """Store one judgment as a new row, in one transaction. `shown` is "ab"/"ba" for pairwise, "" for absolute.

    `sid`: the form's submission id; a second post of the same judgment with it is "replayed" (no new row), a
    different judgment with it is "reused" (refused). `claim`: the item is outside the overlap set, so only its
    first judge may judge it; anyone else gets "taken" (no row). Otherwise "recorded".
    """
    allowed = PAIRWISE_LABELS if kind == "pairwise" else GRADES
    if label not in allowed:
        raise ValueError(f"label {label!r} is not one of {allowed} for a {kind} item")
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    with connect(path) as conn, _transaction(conn):
        if sid is not None:
            first = conn.execute("SELECT annotator, item, label FROM submissions WHERE sid = ?", (sid,)).fetchone()
            if first is not None:
                return "replayed" if tuple(first) == (annotator, item, label) else "reused"
        if claim and not _may_judge(conn, annotator, kind, item, now):
            return "taken"
        conn.execute(
            "INSERT INTO submissions (annotator, kind, item, shown, label, time, sid) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (annotator, kind, item, shown, label, now, sid),
        )
    return "recorded"


def _may_judge(conn: sqlite3.Connection, annotator: str, kind: str, item: str, now: str) -> bool:
    """Claim `item` unless claimed; True if it is `annotator`'s (or they judged it before the claims table)."""
    conn.execute("INSERT OR IGNORE INTO claims VALUES (?, ?, ?, ?)", (item, kind, annotator, now))
    (owner,) = conn.execute("SELECT annotator FROM claims WHERE item = ?", (item,)).fetchone()
    if owner == annotator:
        return True
    mine = "SELECT 1 FROM submissions WHERE annotator = ? AND item = ? LIMIT 1"
    return conn.execute(mine, (annotator, item)).fetchone() is not None


def standing(path: str | Path, kind: str, annotator: str) -> tuple[set[str], set[str]]:
    """For one kind: the items `annotator` has judged at least once, and the items other annotators claimed."""
    # one row each (group_concat): a row fetched is a trip out of and back into the GIL, which a busy server makes
    # cost up to 5 ms (sys.getswitchinterval) each; keys are hex, so "," cannot occur in one
    with connect(path) as conn:
        (mine,) = conn.execute(
            "SELECT group_concat(DISTINCT item) FROM submissions WHERE annotator = ? AND kind = ?", (annotator, kind)
        ).fetchone()
        (others,) = conn.execute(
            "SELECT group_concat(item) FROM claims WHERE kind = ? AND annotator != ?", (kind, annotator)
        ).fetchone()
    return set((mine or "").split(",")) - {""}, set((others or "").split(",")) - {""}


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
