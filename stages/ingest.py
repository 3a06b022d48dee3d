"""DVC stage `ingest`: every params `ingest.sources` entry -> data/ingested/examples/part-*.parquet + prompts.parquet.

Streams each source (a file, a glob, s3://, or an hf:// dataset) through its format's adapter (lessismore.sources)
record by record: examples into Parquet shards of data.shard_rows rows, the dev/test prompts into one file, what
could not be read into data/quarantine/ingest.jsonl with its reason. Memory stays flat whatever the source's size.
Record counts go to metrics/ingest.json.
Resumable: the outputs are written in a work folder (lessismore.resume, .lessismore/partial/ingest/) with a
checkpoint after every finished shard, and moved into place at the end. A killed run's re-run with the same params,
sources and code keeps the shards already written and re-reads only the source it was in (skipping what it wrote);
metrics/timing/ingest.json says how many shards it resumed.
"""

from __future__ import annotations

import time
from collections import Counter

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from lessismore import contract as c
from lessismore import records
from lessismore.config import Source, load_params
from lessismore.errors import run_stage
from lessismore.records import Example, JsonlSink, Prompt, ShardWriter
from lessismore.resume import STALE, Work, fingerprint
from lessismore.sources import ingest_all
from lessismore.sources.on_engine import reader


def main() -> None:
    # ------------------------------------------------------------------------------------------------------------
    # params (every source path is checked here, all at once, before anything is read), and the work a killed run
    # of the same params, sources and code left
    params = load_params(stage="ingest")
    sources, shard_rows = params.ingest.sources, params.data.shard_rows
    console = Console(stderr=True)
    inputs = [s.path for s in sources]
    work = Work.open("ingest", fingerprint([params.ingest, shard_rows], inputs, [__file__]))
    state = work.state or {}
    if work.state:
        at = sources[state["source"]]
        console.print(f"ingest: resumed from shard {work.shards} (source {at.name}: its first records re-read)")
    elif work.discarded:
        console.print(f"ingest: {STALE.format(work.folder)}")

    # ------------------------------------------------------------------------------------------------------------
    # stream every source into the staged outputs: the examples' shards, the prompts (JSONL until the end: a
    # Parquet file cannot be reopened), the quarantine (written even when empty); a checkpoint after every shard
    start = time.perf_counter()
    columns = (SpinnerColumn(finished_text="[green]✓"), TextColumn("{task.description}"), TimeElapsedColumn())
    with (
        Progress(*columns, console=console) as bar,
        ShardWriter(work.path(c.EXAMPLES), Example, shard_rows, keep=work.shards) as examples,
        JsonlSink(work.path("prompts.jsonl"), keep_bytes=state.get("prompts")) as prompts,
        JsonlSink(work.path("quarantine.jsonl"), keep_bytes=state.get("quarantine")) as dropped,
    ):
        tasks: dict[int, int] = {}
        shards = bar.add_task("", total=None)

        def progress(i: int, spec: Source, seen: Counter, done: bool) -> None:
            if i not in tasks:
                tasks[i] = bar.add_task(f"ingest {spec.name}", total=None)
            text = f"ingest {spec.name}: {seen.total()} records"
            if done:
                kept = f"{seen['Example']} examples" if spec.split == "train" else f"{seen['Prompt']} prompts"
                text = f"{spec.name} ({spec.format}): {kept}, {seen['Dropped']} dropped"
            bar.update(tasks[i], description=text, **({"total": 1, "completed": 1} if done else {}))
            bar.update(shards, description=f"examples: {examples.count} records, {examples.finished} shard(s) done")

        def checkpoint(position: dict) -> None:
            sizes = {"prompts": prompts.size(), "quarantine": dropped.size(), "shards": examples.finished}
            work.save(position | sizes, ["prompts.jsonl", "quarantine.jsonl"], {c.EXAMPLES: examples.finished})

        # here, in worker processes (spooled in the work folder), or each source on the Ray cluster
        read = reader(params.data, sources, state.get("source", 0), spool=work.path("spool"))
        counts = ingest_all(sources, examples, prompts, dropped, progress, checkpoint, work.state, read)
    staged_prompts = (records.from_dict(Prompt, row) for row in records.iter_jsonl(work.path("prompts.jsonl")))
    records.write_parquet(work.path(c.PROMPTS), staged_prompts, Prompt)
    staged = {c.EXAMPLES: c.INGESTED / c.EXAMPLES, c.PROMPTS: c.INGESTED / c.PROMPTS}
    work.finish(staged | {"quarantine.jsonl": c.quarantine("ingest")})

    # ------------------------------------------------------------------------------------------------------------
    # metrics (timings apart: they differ on every run, and so does what a resumed run did again)
    metrics = counts.metrics()
    records.write_json(c.metrics("ingest"), metrics)
    seconds = {name: n["seconds"] for name, n in counts.per_source.items()}
    resumed = {"shards": work.shards, "reparsed": counts.reparsed}
    timing = {"seconds": round(time.perf_counter() - start, 2), "per_source": seconds, "resumed": resumed}
    records.write_json(c.timing("ingest"), timing)
    console.print(
        f"ingest: {metrics['counts']} -> {c.INGESTED}/ ({len(examples.shards)} example shard(s) of at most "
        f"{shard_rows} rows), quarantine {c.quarantine('ingest')}"
        + (f"; resumed from shard {work.shards} of {len(examples.shards)}" if work.shards else "")
    )


if __name__ == "__main__":
    run_stage("ingest", main)
