"""DVC stage `validate`: data/ingested/ -> Great Expectations suites, shard by shard -> data/validated/.

Streams the ingested example shards through the suite one shard at a time (data.shard_rows rows) and writes what
passes of ingested shard n as validated shard n (data/validated/examples/part-*.parquet), the prompts as one file.
Rows that fail a row check (or repeat an id) go to data/quarantine/validate.jsonl with their reason and fix, as they
come; the Data Docs (every shard's run, readable offline) go to reports/data_docs/index.html; counts and every
expectation's outcome, merged over the shards, go to metrics/validate.json (with each eval split's final count).
The stage exits non-zero when a whole-table expectation fails, or when a dev/test prompt was removed at ingest or
here and validate.allow_eval_drop is false, after writing all that.
Resumable: the outputs are written in a work folder (lessismore.resume, .lessismore/partial/validate/) with a
checkpoint after every input shard (validate/checkpoint.py), and moved into place at the end. A killed run's re-run
with the same params, inputs and code starts at the shard after the last checkpoint; metrics/timing/validate.json
says how many shards it resumed.
"""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from lessismore import contract as c
from lessismore import records
from lessismore.config import load_params
from lessismore.errors import NotFound, run_stage
from lessismore.records import Dropped, Prompt
from lessismore.resume import STALE, Work, fingerprint
from lessismore.validate import TableCheckError, check_eval_kept, eval_drops, validate_shards
from lessismore.validate.checkpoint import ValidateWork
from lessismore.validate.on_engine import checker

DOCS = c.DATA_DOCS


def main() -> None:
    # ------------------------------------------------------------------------------------------------------------
    # params and inputs (the example shards are read one at a time, below), and the work a killed run of the same
    # params, inputs and code left
    params = load_params(stage="validate")
    cfg, shard_rows = params.validate, params.data.shard_rows
    sources = {s.name: s.path for s in params.ingest.sources}
    splits = {s.name: s.split for s in params.ingest.sources}
    console = Console(stderr=True)
    for path in (c.INGESTED / c.EXAMPLES, c.INGESTED / c.PROMPTS, c.quarantine("ingest")):
        if not path.exists():
            raise NotFound(f"{path} not found; run the ingest stage first (`dvc repro ingest`)")
    shards = records.parquet_files(c.INGESTED / c.EXAMPLES)
    prompts = records.read_parquet(c.INGESTED / c.PROMPTS, Prompt)
    key = [cfg, params.ingest.sources, shard_rows]
    inputs = [c.INGESTED, c.quarantine("ingest")]
    opened = Work.open("validate", fingerprint(key, inputs, [__file__]))
    work = ValidateWork(opened)
    if resumed := work.shards:
        console.print(f"validate: resumed from shard {resumed} of {len(shards)}")
    elif opened.discarded:
        console.print(f"validate: {STALE.format(opened.folder)}")

    # ------------------------------------------------------------------------------------------------------------
    # run the suite on every shard (after the checkpoint's), streaming the validated shards and the quarantine
    # (written even when empty) into the work folder, a checkpoint after every shard; then into place
    start = time.perf_counter()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with (
        Progress(*columns, console=console) as bar,
        work.examples as kept_examples,
        work.prompts as kept_prompts,
        work.dropped as dropped,
    ):
        task = bar.add_task("validate: shards of examples", total=len(shards), completed=resumed)

        def progress(suite: str, batches: int, rows: int) -> None:
            if suite == "examples":
                kept = f"{kept_examples.count} kept ({kept_examples.finished} shards written)"
                bar.update(task, completed=batches, description=f"validate: {rows} examples read, {kept}")

        summary = validate_shards(
            records.iter_tables(c.INGESTED / c.EXAMPLES, shard_rows, skip=resumed),
            prompts,
            kept_examples=kept_examples,
            kept_prompts=kept_prompts,
            dropped=dropped,
            sources=sources,
            min_chars=cfg.min_chars,
            max_chars=cfg.max_chars,
            max_quarantine_share=cfg.max_quarantine_share,
            docs_dir=DOCS,
            progress=progress,
            checkpoint=work.checkpoint,
            start=work.start,
            # here, in worker processes, or on Ray
            check=checker(params.data, min_chars=cfg.min_chars, max_chars=cfg.max_chars, shards=len(shards) - resumed),
        )
    work.finish(c.VALIDATED, c.quarantine("validate"))
    seconds = time.perf_counter() - start
    ingest_drops = (records.from_dict(Dropped, row) for row in records.iter_jsonl(c.quarantine("ingest")))
    lost = eval_drops([*eval_drops(ingest_drops, splits), *summary.prompt_drops], splits)

    # ------------------------------------------------------------------------------------------------------------
    # metrics (timings apart: they differ on every run)
    metrics = summary.metrics(sources, lost, splits)
    records.write_json(c.metrics("validate"), metrics)
    records.write_json(c.timing("validate"), {"seconds": round(seconds, 2), "resumed": {"shards": resumed}})
    console.print(
        f"validate: {metrics['counts']} in {seconds:.1f} s ({len(shards)} shard(s)) -> {c.VALIDATED}/, quarantine "
        f"{c.quarantine('validate')}, Data Docs {DOCS / 'index.html'}"
    )

    # ------------------------------------------------------------------------------------------------------------
    # verdict: a whole-table expectation or a lost eval prompt stops the pipeline (exit status 2, everything above
    # already written)
    try:
        summary.raise_for_failures()
    except TableCheckError as err:
        raise TableCheckError(f"FAILED a whole-table expectation (details in {DOCS / 'index.html'}):\n{err}") from None
    if warning := check_eval_kept(lost, splits, cfg.allow_eval_drop):
        console.print(f"[yellow]validate: WARNING {warning}[/yellow]")


if __name__ == "__main__":
    run_stage("validate", main)
