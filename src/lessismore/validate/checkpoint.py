"""validate's checkpoints: what stages/validate.py saves after each input shard, and how a re-run resumes from it.

Sits in validate/, on a resume.Work folder. The validated shards, the prompts and the quarantine are written there
and moved into place by `finish`. After each input shard of examples, `checkpoint` saves that shard's GX results
(gx/<n>.json, for the one merged Data Docs site), the rows of the open output shard (open-<n>.parquet: validated
shards do not end where input shards do), then state.json: the run's counts and merged outcomes (run.py), where
the writers stand and the quarantine's length. A re-run with the same fingerprint reopens the writers there and
hands validate_shards a `Resumed`; the kept-id map is rebuilt from the kept rows themselves (they are its entries).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lessismore.contract import EXAMPLES, PROMPTS
from lessismore.records import Example, JsonlSink, ParquetSink, Prompt, read_parquet, write_json, write_parquet
from lessismore.resume import OpenShardWriter, Work
from lessismore.validate.run import Resumed

QUARANTINE = "quarantine.jsonl"


class ValidateWork:
    """The writers of one validate run in its work folder, restored to the last checkpoint when there is one."""

    def __init__(self, work: Work, shard_rows: int) -> None:
        state, self.work = work.state or {}, work
        rows = read_parquet(work.path(state["open"]), Example) if state else []
        keep = state.get("out_shards", 0)
        self.examples = OpenShardWriter(work.path(EXAMPLES), Example, shard_rows, keep=keep, open_rows=rows)
        self.prompts = ParquetSink(work.path(PROMPTS), Prompt)  # written after the last checkpoint, in one go
        self.dropped = JsonlSink(work.path(QUARANTINE), keep_bytes=state.get("quarantine"))
        self.start = None
        if state:
            results = {k: v for i in range(work.shards) for k, v in _read(work.path(_gx(i))).items()}
            self.start = Resumed(state["run"], _kept(self.examples.shards[:keep], rows), results)

    @property
    def shards(self) -> int:
        """Input shards the checkpoint had validated: where this run starts (0 on a fresh start)."""
        return self.work.shards

    def checkpoint(self, run: dict[str, Any], results: dict[str, str]) -> None:
        """After input shard n: its GX results, the open output shard's rows, then the state that names them."""
        n = run["summary"]["batches"]["examples"]
        write_json(self.work.path(_gx(n - 1)), results)
        open_rows = f"open-{n:05d}.parquet"  # a new name each time: state.json names the one that matches it
        write_parquet(self.work.path(open_rows), self.examples.open, Example)
        state = {"run": run, "shards": n, "out_shards": self.examples.finished, "open": open_rows}
        files = [*(_gx(i) for i in range(n)), open_rows, QUARANTINE]  # n stats: nothing next to GX's seconds a shard
        self.work.save(state | {"quarantine": self.dropped.size()}, files, {EXAMPLES: self.examples.finished})
        self.work.path(f"open-{n - 1:05d}.parquet").unlink(missing_ok=True)

    def finish(self, validated: Path, quarantine: Path) -> None:
        self.work.finish({EXAMPLES: validated / EXAMPLES, PROMPTS: validated / PROMPTS, QUARANTINE: quarantine})


def _gx(i: int) -> str:
    return f"gx/{i:05d}.json"


def _read(path: Path) -> dict[str, str]:
    return json.loads(path.read_text(encoding="utf-8"))


def _kept(shards: list[Path], open_rows: list[Example]) -> list[tuple[str, str, str]]:
    """(id, file, row) of every kept example, in order: the finished shards' columns, then the open shard's rows."""
    import pyarrow.parquet as pq

    kept = []
    for shard in shards:
        for row in pq.read_table(shard, columns=["id", "origin"]).to_pylist():
            kept.append((row["id"], row["origin"]["file"], row["origin"]["row"]))
    return kept + [(e.id, e.origin.file, e.origin.row) for e in open_rows]
