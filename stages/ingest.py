"""DVC stage `ingest`: every params `ingest.sources` entry -> data/ingested/{examples,prompts}.parquet.

Reads each source (a file, a glob, s3://, or an hf:// dataset) with its format's adapter (lessismore.sources),
keeps what could not be read in data/quarantine/ingest.jsonl with its reason, and writes record counts to
metrics/ingest.json.
"""

from __future__ import annotations

import time
from collections import Counter

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from lessismore import contract as c
from lessismore.config import Source, load_params
from lessismore.errors import run_stage
from lessismore.records import Dropped, Example, Prompt, write_json, write_jsonl, write_parquet
from lessismore.sources import ingest_source


def main() -> None:
    # ------------------------------------------------------------------------------------------------------------
    # params (every source path is checked here, all at once, before anything is read)
    sources = load_params(stage="ingest").ingest.sources
    console = Console(stderr=True)

    # ------------------------------------------------------------------------------------------------------------
    # read every source (the adapters in lessismore.sources do all the parsing)
    start = time.perf_counter()
    examples, prompts, dropped, per_source = read_sources(sources, console)

    # ------------------------------------------------------------------------------------------------------------
    # outputs: the two tables, the quarantine (written even when empty) and the metrics
    write_parquet(c.INGESTED / c.EXAMPLES, examples)
    write_parquet(c.INGESTED / c.PROMPTS, prompts)
    write_jsonl(c.quarantine("ingest"), dropped)
    metrics = {
        "counts": {"examples": len(examples), "prompts": len(prompts), "dropped": len(dropped)},
        "per_source": {name: {k: v for k, v in n.items() if k != "seconds"} for name, n in per_source.items()},
        "dropped_by_reason": dict(sorted(Counter(d.reason for d in dropped).items())),
    }
    write_json(c.metrics("ingest"), metrics)
    seconds = {name: n["seconds"] for name, n in per_source.items()}
    write_json(c.timing("ingest"), {"seconds": round(time.perf_counter() - start, 2), "per_source": seconds})
    console.print(f"ingest: {metrics['counts']} -> {c.INGESTED}/, quarantine {c.quarantine('ingest')}")


def read_sources(
    sources: tuple[Source, ...], console: Console
) -> tuple[list[Example], list[Prompt], list[Dropped], dict[str, dict]]:
    """Every source in params order, with a live per-source record count; per-source counts and seconds."""
    examples: list[Example] = []
    prompts: list[Prompt] = []
    dropped: list[Dropped] = []
    per_source: dict[str, dict] = {}
    columns = (SpinnerColumn(finished_text="[green]✓"), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console) as bar:
        for i, spec in enumerate(sources):
            task = bar.add_task(f"ingest {spec.name}", total=None)
            start, counts = time.perf_counter(), Counter()
            for rec in ingest_source(spec, index=i):
                bucket = examples if isinstance(rec, Example) else prompts if isinstance(rec, Prompt) else dropped
                bucket.append(rec)
                counts[type(rec).__name__] += 1
                bar.update(task, description=f"ingest {spec.name}: {counts.total()} records")
            n_ex, n_pr, n_dr = counts["Example"], counts["Prompt"], counts["Dropped"]
            seconds = round(time.perf_counter() - start, 3)
            per_source[spec.name] = {"examples": n_ex, "prompts": n_pr, "dropped": n_dr, "seconds": seconds}
            done = f"{n_ex} examples" if spec.split == "train" else f"{n_pr} prompts"
            bar.update(task, total=1, completed=1, description=f"{spec.name} ({spec.format}): {done}, {n_dr} dropped")
    return examples, prompts, dropped, per_source


if __name__ == "__main__":
    run_stage("ingest", main)
