"""DVC stage `import@<name>`: the test prompts + one published answer file -> outputs/responses/<name>.jsonl.

One instance per entry of params generate.baselines (dvc.yaml `foreach` over the mapping; the entry's name is the
only argument), so each depends on exactly its own file and params entry, and judging published answers against
each other needs no model. The answers are matched to the test prompts (or the subset eval.prompts names) by the
file's own ids first, then by text; unanswered prompts and ambiguous rows are reported, rows without an answer
quarantined with file and row.
"""

from __future__ import annotations

import sys
import time

from lessismore import contract as c
from lessismore import records
from lessismore.config import load_params
from lessismore.errors import BadValue, run_stage
from lessismore.evalset import choose_prompts, describe, read_test_prompts
from lessismore.generate.baselines import import_one


def main() -> None:
    # ---------------------------------------------------------------- params and inputs
    started = time.perf_counter()
    params = load_params(stage="import")
    baselines = params.generate.baselines
    name = sys.argv[1] if len(sys.argv) == 2 else ""
    if name not in baselines:
        raise BadValue(f"usage: python stages/import.py NAME, NAME one of generate.baselines {list(baselines)}")
    test = read_test_prompts(c.VALIDATED / c.PROMPTS)
    prompts = choose_prompts(test, params.eval.prompts)

    # ---------------------------------------------------------------- match the file's answers to the prompts
    metrics, dropped = import_one(name, baselines[name], prompts, c.response_file(name))
    metrics["eval_prompts"] = describe(params.eval.prompts, len(prompts), len(test))

    # ---------------------------------------------------------------- write
    records.write_jsonl(c.quarantine("import", name), dropped)
    records.write_json(c.metrics("generate", name), metrics)
    records.write_json(c.timing("generate", name), {"seconds": round(time.perf_counter() - started, 2)})


if __name__ == "__main__":
    run_stage("import", main)
