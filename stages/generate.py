"""DVC stage `generate@<model>`: test prompts + models/<model>/ (+ models/base/) -> outputs/responses/<model>.jsonl.

One instance per model of params generate.models (dvc.yaml `foreach`); the model's name is the only argument. It
answers every test prompt (or the subset eval.prompts names) with LIMA's decoding through the configured backend
(transformers, an OpenAI-compatible server, or vLLM). Generation is resumable: the answers file is a persistent DVC
out, each batch is appended as it finishes, and a re-run generates only the answers whose content id (model,
checkpoint hash, prompt, decoding) is missing; answers from another checkpoint or decoding are dropped as stale.
Published answers come in through the `import@<name>` stage instead.
"""

from __future__ import annotations

import sys

from lessismore import contract as c
from lessismore import records
from lessismore.config import load_params
from lessismore.errors import BadValue, run_stage
from lessismore.evalset import choose_prompts, describe, read_test_prompts
from lessismore.generate.run import answer_one


def main() -> None:
    # ---------------------------------------------------------------- params and inputs
    params = load_params(stage="generate")
    g = params.generate
    name = sys.argv[1] if len(sys.argv) == 2 else ""
    if name not in g.models:
        raise BadValue(f"usage: python stages/generate.py MODEL, MODEL one of generate.models {list(g.models)}")
    test = read_test_prompts(c.VALIDATED / c.PROMPTS)
    prompts = choose_prompts(test, params.eval.prompts)

    # ---------------------------------------------------------------- generate (resumable)
    metrics, timing = answer_one(g, prompts, name, c.MODEL_DIRS[name], c.response_file(name), params.base.seed)
    metrics["eval_prompts"] = describe(params.eval.prompts, len(prompts), len(test))

    # ---------------------------------------------------------------- write
    records.write_json(c.metrics("generate", name), metrics)
    records.write_json(c.timing("generate", name), timing)


if __name__ == "__main__":
    run_stage("generate", main)
