"""`lessismore explain ID`: where an example came from and why curation kept or dropped it.

After the data stages: an example's story is read back from what ingest, validate and curate wrote (the Parquet
outputs, the example shards among them, data/curated/train.jsonl and data/quarantine/<stage>.jsonl), so it needs
nothing but the pipeline's own files. `explain_example` is pure over those rows: the origin, each stage the example
reached, and whether curation kept it (with what it recorded: rewrites, its source's share of the selection) or
dropped it (stage, reason code, detail). Ids are content hashes; curation's rewrites give an example a new id and
keep the old one in meta["rewritten_from"], so either id (or a unique prefix of one) finds it. `render_example`
prints the story.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lessismore import contract as c

STAGES = ("ingest", "validate", "curate")
TRAIN_SET = str(c.TRAIN_SET)
FILES = tuple(  # (stage, path, kind): every file the data stages write that holds examples, prompts or drops
    (stage, str(path), kind)
    for stage, path, kind in (
        ("ingest", c.INGESTED / c.EXAMPLES, "example"),
        ("ingest", c.INGESTED / c.PROMPTS, "prompt"),
        ("ingest", c.quarantine("ingest"), "dropped"),
        ("validate", c.VALIDATED / c.EXAMPLES, "example"),
        ("validate", c.VALIDATED / c.PROMPTS, "prompt"),
        ("validate", c.quarantine("validate"), "dropped"),
        ("curate", c.TRAIN_SET, "example"),
        ("curate", c.quarantine("curate"), "dropped"),
    )
)


def load_rows(root: str | Path) -> list[dict[str, Any]]:
    """Every row of FILES under `root` as {"stage", "file", "n" (1-based), "kind", "row"}; absent files are skipped."""
    from lessismore import records

    out = []
    for stage, rel, kind in FILES:
        path = Path(root) / rel
        if not path.exists():
            continue
        if path.suffix == ".parquet" or path.is_dir():  # one Parquet file, or a folder of shards
            cls = records.Prompt if kind == "prompt" else records.Example
            rows = [records.to_dict(r) for r in records.read_parquet(path, cls)]
        else:
            rows = list(records.iter_jsonl(path))
        out += [{"stage": stage, "file": rel, "n": i, "kind": kind, "row": row} for i, row in enumerate(rows, 1)]
    return out


def aliases(row: dict[str, Any]) -> set[str]:
    """The ids a row answers to: its own, the id before curation's rewrites, and for a drop its record's ids.

    >>> sorted(aliases({"id": "d1", "record": {"id": "e2", "meta": {"rewritten_from": "e1"}}}))
    ['d1', 'e1', 'e2']
    """
    record = row.get("record") or {}
    metas = [m for m in (row.get("meta"), record.get("meta")) if isinstance(m, dict)]
    ids = {row.get("id"), record.get("id"), *(m.get("rewritten_from") for m in metas)}
    return {i for i in ids if isinstance(i, str) and i}


def families(rows: list[dict[str, Any]]) -> dict[str, set[str]]:
    """{id: every id of the same example}: rows sharing an alias are one example seen at several stages."""
    family: dict[str, set[str]] = {}
    for item in rows:
        group = set(aliases(item["row"]))
        for i in list(group):
            group |= family.get(i, set())
        for i in group:
            family[i] = group
    return family


def explain_example(query: str, rows: list[dict[str, Any]], curate_metrics: dict[str, Any] | None = None) -> dict:
    """The story of the example (or prompt, or quarantined record) whose id is `query` or starts with it.

    LookupError when nothing matches (saying where ids are found) or when a prefix matches several examples
    (listing them with their origin).
    """
    family = families(rows)
    hits = [query] if query in family else sorted(i for i in family if i.startswith(query))
    groups = {frozenset(family[i]) for i in hits}
    if not groups:
        files = ", ".join(sorted({r["file"] for r in rows})) or "none found: run `dvc repro curate` or `make pull`"
        raise LookupError(
            f"no example, prompt or quarantined record has an id starting with {query!r} (read: {files})"
        )
    if len(groups) > 1:
        first = {i: next(r for r in rows if i in aliases(r["row"])) for i in hits}
        listed = "; ".join(f"{i} ({_origin_text(first[i]['row'])})" for i in hits[:10])
        raise LookupError(f"{query!r} matches {len(hits)} ids; give more characters: {listed}")
    ids = set(next(iter(groups)))
    seen = [r for r in rows if aliases(r["row"]) & ids]
    entries = {r["row"].get("id") for r in seen if r["kind"] == "dropped" and (r["row"].get("record") or {}).get("id")}
    first = seen[0]["row"]
    record = first["record"] if (first.get("record") or {}).get("messages") else first
    steps = [
        {
            "stage": r["stage"],
            "file": r["file"],
            "n": r["n"],
            "kind": r["kind"],
            "id": r["row"].get("id"),
            "reason": r["row"].get("reason"),
            "detail": r["row"].get("detail"),
        }
        for r in seen
    ]
    last = max(STAGES.index(s["stage"]) for s in steps)
    final = [s for s in steps if STAGES.index(s["stage"]) == last]
    out = next((s for s in final if s["kind"] != "dropped"), None)
    kind = "prompt" if any(r["kind"] == "prompt" for r in seen) else "example" if record.get("messages") else "record"
    story = {
        "query": query,
        "ids": sorted(ids - entries),
        "kind": kind,
        "origin": first.get("origin") or {},
        "text": _text(record),
        "steps": steps,
        "reached": STAGES[last],
    }
    if out is None:
        code, _, other = (final[-1]["reason"] or "").partition(":")
        related = {"related": other} if other else {}  # the kept duplicate, or the test prompt it overlaps
        return story | {"verdict": f"dropped at {final[-1]['stage']}: {code}", "dropped": final[-1]} | related
    if story["kind"] == "prompt":
        split = first.get("split") or "held-out"
        return story | {"verdict": f"held out: a {split} prompt, never trained on (curate decontaminates against it)"}
    if out["file"] != TRAIN_SET:
        return story | {"verdict": f"reached {STAGES[last]}; the next stage has not run yet (`dvc repro curate`)"}
    kept = next(r["row"] for r in seen if r["file"] == TRAIN_SET)
    source = (story["origin"] or {}).get("source", "")
    share = ((curate_metrics or {}).get("per_source") or {}).get(source, {})
    kept_info = {
        "id": kept["id"],
        "line": out["n"],
        "rewrites": (kept.get("meta") or {}).get("rewrites", []),
        "scores": (kept.get("meta") or {}).get("scores"),  # the model-based scores it was chosen by (scored variants)
        "source": source,
        "source_selected": share.get("selected"),
        "source_candidates": share.get("candidates"),
        "variant": (curate_metrics or {}).get("variant"),
        "rules": ((curate_metrics or {}).get("rules") or {}).get(source),  # the selection rules it passed
    }
    return story | {"verdict": "kept: in the training set", "kept": kept_info}


def _text(row: dict[str, Any]) -> str:
    """The first user turn (or a prompt's text, or a drop's raw row), cut to 200 characters."""
    messages = row.get("messages") or []
    text = next((m["content"] for m in messages if m.get("role") == "user"), None) or row.get("text")
    text = text or json.dumps(row.get("record") or {}, ensure_ascii=False)
    return " ".join(str(text).split())[:200]


def _origin_text(row: dict[str, Any]) -> str:
    o = row.get("origin") or {}
    return f"{o.get('source', '?')}, {o.get('file', '?')} row {o.get('row', '?')}"


# ----------------------------------------------------------------------------------------------------------------
# printing (rich, imported only here)


def render_example(story: dict[str, Any]) -> Any:
    """A rich Table of an example's story: origin, prompt, one line a stage, the verdict."""
    from rich.markup import escape
    from rich.table import Table

    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    o = story["origin"]
    table.add_row(story["kind"], f"{', '.join(story['ids'])}  [bold]{escape(story['verdict'])}[/]")
    table.add_row(
        "origin",
        escape(f"{o.get('source')} · {o.get('file')} row {o.get('row')} · {o.get('license') or 'no license given'}"),
    )
    table.add_row("text", escape(story["text"]))
    for step in story["steps"]:
        where = f"{step['file']} #{step['n']}"
        if step["kind"] == "dropped":
            text = f"[red]dropped: {escape(step['reason'] or '')}[/] ({where}, entry {step['id']})"
            table.add_row(step["stage"], f"{text}\n{escape(step['detail'] or '')}")
        else:
            table.add_row(step["stage"], f"[green]in[/] {where} (id {step['id']})")
    if story.get("related"):
        table.add_row("see", f"lessismore explain {story['related']}")
    kept = story.get("kept")
    if kept:
        facts = [f"line {kept['line']} of data/curated/train.jsonl"]
        facts += [f"rewritten: {', '.join(kept['rewrites'])}"] if kept["rewrites"] else []
        if kept.get("source_selected") is not None:
            facts.append(
                f"{kept['source']}: {kept['source_selected']} of {kept['source_candidates']} candidates selected"
            )
        facts += [f"variant {kept['variant']}"] if kept.get("variant") else []
        if kept.get("scores"):
            facts.append("scores " + ", ".join(f"{k} {v}" for k, v in kept["scores"].items()))
        facts += [f"rules {kept['rules']}"] if kept.get("rules") else []
        table.add_row("kept", escape("; ".join(facts)))
    return table
