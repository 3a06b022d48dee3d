"""DVC stage `generate`: the test prompts + models/final/ + models/base/ (+ baseline files) -> outputs/responses/.

Every model in params generate.models answers every test prompt (or the subset eval.prompts names) with LIMA's
decoding through the configured backend (transformers, an OpenAI-compatible server, or vLLM). Generation is
resumable: outputs/responses is a persistent DVC out, each batch is appended as it finishes, and a re-run generates
only the answers whose content id (model, checkpoint hash, prompt, decoding) is missing; answers from another
checkpoint or decoding are dropped as stale. Each configured baseline file is imported as
outputs/responses/<name>.jsonl, its unmatched prompts listed.
"""

from __future__ import annotations

from lessismore import contract as c
from lessismore import records
from lessismore.config import load_params
from lessismore.errors import NotFound, run_stage
from lessismore.evalset import choose_prompts, describe
from lessismore.generate.run import answer_all, import_all


def main() -> None:
    # ---------------------------------------------------------------- params and inputs
    params = load_params(stage="generate")
    g = params.generate
    prompts_file = c.VALIDATED / c.PROMPTS
    test = [p for p in records.read_parquet(prompts_file, records.Prompt) if p.split == "test"]
    if not test:
        raise NotFound(f"{prompts_file}: no prompts with split 'test'; check the test source in params ingest.sources")
    prompts = choose_prompts(test, params.eval.prompts)
    names = [*g.models, *(b.name for b in g.baselines)]
    for old in c.RESPONSES.glob("*.jsonl"):  # the folder persists between runs: no answers from a dropped model remain
        if old.stem not in names:
            old.unlink()

    # ---------------------------------------------------------------- generate (resumable), then import baselines
    metrics, timing = answer_all(g, prompts, c.MODEL_DIRS, c.RESPONSES, params.base.seed)
    dropped = import_all(g, prompts, c.RESPONSES, metrics)
    metrics["eval_prompts"] = describe(params.eval.prompts, len(prompts), len(test))

    # ---------------------------------------------------------------- write
    records.write_jsonl(c.quarantine("generate"), dropped)
    records.write_json(c.metrics("generate"), metrics)
    records.write_json(c.timing("generate"), timing)


if __name__ == "__main__":
    run_stage("generate", main)
