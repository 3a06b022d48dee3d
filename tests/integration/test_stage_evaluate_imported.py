"""Evaluating published outputs without training (issue 20, item 6): stages/generate.py imports two answer files
and stages/judge.py compares them, on a subset of the test prompts (eval.prompts), with no models/finetuned at all.
The judge is the tiny random model at models/base (the `model` stage's out: no training needed)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lessismore import records
from lessismore.config import merge, read_yaml
from lessismore.records import Origin, Prompt
from tests.specs import judge_entry

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _run(stage: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "DO_NOT_TRACK": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, str(REPO / "stages" / f"{stage}.py")]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def _workspace(root: Path, tiny_model_dir: Path, prompts_rule) -> list[Prompt]:
    params = merge(read_yaml(REPO / "params.yaml"), read_yaml(REPO / "profiles" / "tiny.yaml"))
    baselines = [
        {"name": "gpt4", "format": "just_eval", "path": "data/baselines/gpt4.json"},
        {"name": "llama", "format": "just_eval", "path": "data/baselines/llama.json"},
    ]
    judge = {"judges": [judge_entry(name="tiny", model="base", batch_size=4)], "primary": "tiny"}
    params = merge(params, {"judge": judge | {"candidate": "gpt4", "baselines": ["llama"], "injection": {"pairs": 1}}})
    params["generate"] |= {"models": [], "baselines": baselines}  # every compared system is imported
    params["eval"] = {"prompts": prompts_rule}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    shutil.copytree(tiny_model_dir, root / "models" / "base")
    origin = Origin("test_prompts", "data/sources/prompts/test.jsonl", "0")
    prompts = [
        Prompt(f"How do I keep houseplant number {i} alive in winter?", "test", origin, meta={"id": f"lima-{i}"})
        for i in range(1, 6)
    ]
    records.write_parquet(root / "data" / "validated" / "prompts.parquet", prompts)
    (root / "data" / "baselines").mkdir(parents=True)
    for name in ("gpt4", "llama"):
        rows = [
            {
                "id": i,
                "source_id": p.meta["id"],
                "instruction": p.text,
                "output": f"{name}: water it less ({i}).",
                "generator": name,
            }
            for i, p in enumerate(prompts)
        ]
        if name == "llama":  # the same text as lima-2, but its ids name another question: reported, never paired
            rows[1] |= {"source_id": "alpaca-77", "id": 77}
        (root / "data" / "baselines" / f"{name}.json").write_text(json.dumps(rows))
    return prompts


def test_two_published_output_files_are_judged_against_each_other_without_a_trained_model(tmp_path, tiny_model_dir):
    prompts = _workspace(tmp_path, tiny_model_dir, {"first": 3})
    for stage in ("generate", "judge"):
        done = _run(stage, tmp_path)
        assert done.returncode == 0, f"{stage}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    assert not (tmp_path / "models" / "finetuned").exists()

    generate = json.loads((tmp_path / "metrics" / "generate.json").read_text())
    assert generate["eval_prompts"] == {"rule": {"first": 3}, "prompts": 3, "of": 5}
    assert generate["counts"] == {"responses": 5, "gpt4": 3, "llama": 2}  # llama's lima-2 row was not paired
    assert generate["baselines"]["llama"]["ambiguous"] == 1 and generate["baselines"]["llama"]["unmatched"] == 1
    assert generate["baselines"]["gpt4"]["extra"] == 2  # answers to prompts outside the subset are left out

    judgments = records.read_jsonl(tmp_path / "outputs" / "judgments.jsonl", records.Judgment)
    first3 = {p.id for p in prompts[:3]}
    assert {j.prompt_id for j in judgments} == first3 - {prompts[1].id}  # lima-1 and lima-3, both orders
    assert len(judgments) == 2 * 2 and {(j.model_a, j.model_b) for j in judgments} >= {("gpt4", "llama")}
    judge = json.loads((tmp_path / "metrics" / "judge.json").read_text())
    assert judge["counts"]["pairs"] == 2 and set(judge["baselines"]) == {"llama"}


def test_an_unknown_prompt_id_stops_generate_with_the_key_and_the_fix(tmp_path, tiny_model_dir):
    _workspace(tmp_path, tiny_model_dir, {"ids": ["lima-1", "lima-42"]})
    done = _run("generate", tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "eval.prompts.ids: ['lima-42'] are not test prompts" in done.stderr
