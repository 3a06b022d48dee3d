"""validate's checkpoints: what stages/validate.py saves after each input shard, and how a re-run resumes from it.

Sits in validate/, on a resume.Work folder. The validated shards, the prompts and the quarantine are written there
and moved into place by `finish`. Validated shard n holds the kept rows of ingested shard n (at most data.shard_rows
rows, fewer where rows were dropped), so a shard is whole on disk when its input shard is done. After each input
shard of examples, `checkpoint` saves that shard's GX results (gx/<n>.json, for the one merged Data Docs site), then
state.json: the run's counts and merged outcomes (run.py) and the quarantine's length. A re-run with the same
fingerprint keeps the shards written, reopens the quarantine there and hands validate_shards a `Resumed`; the
kept-id map is rebuilt from the kept rows themselves (they are its entries).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lessismore.contract import EXAMPLES, PROMPTS
from lessismore.records import Example, JsonlSink, ParquetSink, Prompt, TableShards, write_json
from lessismore.resume import Work
from lessismore.validate.run import Resumed

QUARANTINE = "quarantine.jsonl"


class ValidateWork:
    """The writers of one validate run in its work folder, restored to the last checkpoint when there is one."""

    def __init__(self, work: Work) -> None:
        state, self.work = work.state or {}, work
        self.examples = TableShards(work.path(EXAMPLES), Example, keep=work.shards)
        self.prompts = ParquetSink(work.path(PROMPTS), Prompt)  # written after the last checkpoint, in one go
        self.dropped = JsonlSink(work.path(QUARANTINE), keep_bytes=state.get("quarantine"))
        self.start = None
        if state:
            results = {k: v for i in range(work.shards) for k, v in _read(work.path(_gx(i))).items()}
            self.start = Resumed(state["run"], _kept(self.examples.shards), results)

    @property
    def shards(self) -> int:
        """Input shards the checkpoint had validated: where this run starts (0 on a fresh start)."""
        return self.work.shards

    def checkpoint(self, run: dict[str, Any], results: dict[str, str]) -> None:
        """After input shard n (its kept rows are validated shard n, on disk): its GX results, then the state."""
        n = run["summary"]["batches"]["examples"]
        write_json(self.work.path(_gx(n - 1)), results)
        state = {"run": run, "shards": n, "quarantine": self.dropped.size()}
        files = [*(_gx(i) for i in range(n)), QUARANTINE]  # n stats: nothing next to GX's seconds a shard
        self.work.save(state, files, {EXAMPLES: self.examples.finished})

    def finish(self, validated: Path, quarantine: Path) -> None:
        self.work.finish({EXAMPLES: validated / EXAMPLES, PROMPTS: validated / PROMPTS, QUARANTINE: quarantine})


def _gx(i: int) -> str:
    return f"gx/{i:05d}.json"


def _read(path: Path) -> dict[str, str]:
    return json.loads(path.read_text(encoding="utf-8"))


def _kept(shards: list[Path]) -> list[tuple[str, str, str]]:
    """(id, file, row) of every kept example, in order, from the shards' columns."""
    import pyarrow.parquet as pq

    kept = []
    for shard in shards:
        for row in pq.read_table(shard, columns=["id", "origin"]).to_pylist():
            kept.append((row["id"], row["origin"]["file"], row["origin"]["row"]))
    return kept
