"""DVC stage `ingest`: every params `ingest.sources` entry -> data/ingested/examples/part-*.parquet + prompts.parquet.

Streams each source (a file, a glob, s3://, or an hf:// dataset) through its format's adapter (lessismore.sources)
record by record: examples into Parquet shards of data.shard_rows rows, the dev/test prompts into one file, what
could not be read into data/quarantine/ingest.jsonl with its reason. Memory stays flat whatever the source's size.
Record counts go to metrics/ingest.json.
"""

from __future__ import annotations

import time
from collections import Counter

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from lessismore import contract as c
from lessismore.config import Source, load_params
from lessismore.errors import run_stage
from lessismore.records import Example, JsonlSink, ParquetSink, Prompt, ShardWriter, write_json
from lessismore.sources import ingest_all


def main() -> None:
    # ------------------------------------------------------------------------------------------------------------
    # params (every source path is checked here, all at once, before anything is read)
    params = load_params(stage="ingest")
    sources, shard_rows = params.ingest.sources, params.data.shard_rows
    console = Console(stderr=True)

    # ------------------------------------------------------------------------------------------------------------
    # stream every source into the outputs: the examples' shards, the prompts, the quarantine (written even when
    # empty); the adapters in lessismore.sources do all the parsing
    start = time.perf_counter()
    columns = (SpinnerColumn(finished_text="[green]✓"), TextColumn("{task.description}"), TimeElapsedColumn())
    with (
        Progress(*columns, console=console) as bar,
        ShardWriter(c.INGESTED / c.EXAMPLES, Example, shard_rows) as examples,
        ParquetSink(c.INGESTED / c.PROMPTS, Prompt) as prompts,
        JsonlSink(c.quarantine("ingest")) as dropped,
    ):
        tasks: dict[int, int] = {}

        def progress(i: int, spec: Source, seen: Counter, done: bool) -> None:
            if i not in tasks:
                tasks[i] = bar.add_task(f"ingest {spec.name}", total=None)
            text = f"ingest {spec.name}: {seen.total()} records, {len(examples.shards)} shard(s)"
            if done:
                kept = f"{seen['Example']} examples" if spec.split == "train" else f"{seen['Prompt']} prompts"
                text = f"{spec.name} ({spec.format}): {kept}, {seen['Dropped']} dropped"
            bar.update(tasks[i], description=text, **({"total": 1, "completed": 1} if done else {}))

        counts = ingest_all(sources, examples, prompts, dropped, progress)

    # ------------------------------------------------------------------------------------------------------------
    # metrics (timings apart: they differ on every run)
    metrics = counts.metrics()
    write_json(c.metrics("ingest"), metrics)
    seconds = {name: n["seconds"] for name, n in counts.per_source.items()}
    write_json(c.timing("ingest"), {"seconds": round(time.perf_counter() - start, 2), "per_source": seconds})
    console.print(
        f"ingest: {metrics['counts']} -> {c.INGESTED}/ ({len(examples.shards)} example shard(s) of at most "
        f"{shard_rows} rows), quarantine {c.quarantine('ingest')}"
    )


if __name__ == "__main__":
    run_stage("ingest", main)
