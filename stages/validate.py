"""DVC stage `validate`: data/ingested/*.parquet -> Great Expectations suites -> data/validated/*.parquet.

Rows that fail a row check (or repeat an id) go to data/quarantine/validate.jsonl with their reason and fix; the
Data Docs (readable offline) go to reports/data_docs/index.html; counts and every expectation's outcome go to
metrics/validate.json (with each eval split's final count). The stage exits non-zero when a whole-table expectation
fails, or when a dev/test prompt was removed at ingest or here and validate.allow_eval_drop is false, after writing
all that.
"""

from __future__ import annotations

import time
from collections import Counter

from rich.console import Console

from lessismore import contract as c
from lessismore import records
from lessismore.config import load_params
from lessismore.errors import NotFound, run_stage
from lessismore.records import Example, Prompt, read_parquet, write_jsonl, write_parquet
from lessismore.validate import TableCheckError, check_eval_kept, eval_drops, validate_records

DOCS = c.DATA_DOCS


def main() -> None:
    # ------------------------------------------------------------------------------------------------------------
    # params and inputs
    params = load_params(stage="validate")
    cfg = params.validate
    sources = {s.name: s.path for s in params.ingest.sources}
    console = Console(stderr=True)
    for path in (c.INGESTED / c.EXAMPLES, c.INGESTED / c.PROMPTS, c.quarantine("ingest")):
        if not path.exists():
            raise NotFound(f"{path} not found; run the ingest stage first (`dvc repro ingest`)")
    examples = read_parquet(c.INGESTED / c.EXAMPLES, Example)
    prompts = read_parquet(c.INGESTED / c.PROMPTS, Prompt)

    # ------------------------------------------------------------------------------------------------------------
    # run the suites (GX: a few seconds, most of it the import)
    start = time.perf_counter()
    with console.status(f"validate: {len(examples)} examples, {len(prompts)} prompts with Great Expectations"):
        report = validate_records(
            examples,
            prompts,
            sources=sources,
            min_chars=cfg.min_chars,
            max_chars=cfg.max_chars,
            max_quarantine_share=cfg.max_quarantine_share,
            docs_dir=DOCS,
        )
    seconds = time.perf_counter() - start
    splits = {s.name: s.split for s in params.ingest.sources}
    lost = eval_drops([*records.read_jsonl(c.quarantine("ingest"), records.Dropped), *report.dropped], splits)

    # ------------------------------------------------------------------------------------------------------------
    # outputs: validated tables, quarantine (written even when empty), metrics
    write_parquet(c.VALIDATED / c.EXAMPLES, report.examples)
    write_parquet(c.VALIDATED / c.PROMPTS, report.prompts)
    write_jsonl(c.quarantine("validate"), report.dropped)
    read = Counter(r.origin.source for r in [*examples, *prompts])
    valid = Counter(r.origin.source for r in [*report.examples, *report.prompts])
    metrics = {
        "counts": {
            "examples": len(report.examples),
            "prompts": len(report.prompts),
            "quarantined": len(report.dropped),
        },
        "per_source": {name: {"read": read[name], "valid": valid[name]} for name in sources},
        "dropped_by_reason": dict(sorted(Counter(d.reason for d in report.dropped).items())),
        # the eval set as it goes on to generate and judge: every split's final count, and what it lost
        "eval": {
            split: {
                "prompts": sum(p.split == split for p in report.prompts),
                "dropped": sum(splits[d.origin.source] == split for d in lost),
            }
            for split in ("dev", "test")
        },
        "expectations": report.expectations,
        "success": report.success,
    }
    records.write_json(c.metrics("validate"), metrics)
    records.write_json(c.timing("validate"), {"seconds": round(seconds, 2)})
    console.print(
        f"validate: {metrics['counts']} in {seconds:.1f} s -> {c.VALIDATED}/, quarantine {c.quarantine('validate')}, "
        f"Data Docs {DOCS / 'index.html'}"
    )

    # ------------------------------------------------------------------------------------------------------------
    # verdict: a whole-table expectation or a lost eval prompt stops the pipeline (exit status 2, everything above
    # already written)
    try:
        report.raise_for_failures()
    except TableCheckError as err:
        raise TableCheckError(f"FAILED a whole-table expectation (details in {DOCS / 'index.html'}):\n{err}") from None
    if warning := check_eval_kept(lost, splits, cfg.allow_eval_drop):
        console.print(f"[yellow]validate: WARNING {warning}[/yellow]")


if __name__ == "__main__":
    run_stage("validate", main)
