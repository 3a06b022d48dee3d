"""DVC stage `validate`: data/ingested/*.parquet -> Great Expectations suites -> data/validated/*.parquet.

Rows that fail a row check (or repeat an id) go to data/quarantine/validate.jsonl with their reason and fix; the
Data Docs (readable offline) go to reports/data_docs/index.html; counts and every expectation's outcome go to
metrics/validate.json. The stage exits non-zero only when a whole-table expectation fails, after writing all that.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path

from rich.console import Console

from lessismore import records
from lessismore.config import load_params
from lessismore.records import Example, Prompt, read_parquet, write_jsonl, write_parquet
from lessismore.validate import TableCheckError, validate_records

INGESTED = Path("data/ingested")
VALIDATED = Path("data/validated")
QUARANTINE = Path("data/quarantine/validate.jsonl")
DOCS = Path("reports/data_docs")
METRICS = Path("metrics/validate.json")


def main() -> None:
    # ------------------------------------------------------------------------------------------------------------
    # params and inputs
    params = load_params()
    cfg = params.validate
    sources = {s.name: s.path for s in params.ingest.sources}
    console = Console(stderr=True)
    for name in ("examples.parquet", "prompts.parquet"):
        if not (INGESTED / name).exists():
            sys.exit(f"validate: {INGESTED / name} not found; run the ingest stage first (`dvc repro ingest`)")
    examples = read_parquet(INGESTED / "examples.parquet", Example)
    prompts = read_parquet(INGESTED / "prompts.parquet", Prompt)

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

    # ------------------------------------------------------------------------------------------------------------
    # outputs: validated tables, quarantine (written even when empty), metrics
    write_parquet(VALIDATED / "examples.parquet", report.examples)
    write_parquet(VALIDATED / "prompts.parquet", report.prompts)
    write_jsonl(QUARANTINE, report.dropped)
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
        "expectations": report.expectations,
        "success": report.success,
        "seconds": round(seconds, 2),
    }
    records.write_json(METRICS, metrics)
    console.print(
        f"validate: {metrics['counts']} in {seconds:.1f} s -> {VALIDATED}/, quarantine {QUARANTINE}, "
        f"Data Docs {DOCS / 'index.html'}"
    )

    # ------------------------------------------------------------------------------------------------------------
    # verdict: only a whole-table expectation stops the pipeline
    try:
        report.raise_for_failures()
    except TableCheckError as err:
        sys.exit(f"validate: FAILED a whole-table expectation (details in {DOCS / 'index.html'}):\n{err}")


if __name__ == "__main__":
    main()
