"""The model, train and generate stage scripts, run as DVC runs them, in a temp dir with the tiny profile."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lessismore import records
from lessismore.config import merge, read_yaml
from lessismore.models import checkpoint_hash
from lessismore.train.steplog import read_steps
from tests.conftest import toy_examples
from tests.specs import dev_decoding, judge_entry

REPO = Path(__file__).resolve().parents[2]


def _run_stage(name: str, cwd: Path, *args: str) -> None:
    """stages/<name>.py run from `cwd`; `args`: a foreach stage's entry (generate finetuned = generate@finetuned)."""
    done = subprocess.run(
        [sys.executable, str(REPO / "stages" / f"{name}.py"), *args], cwd=cwd, capture_output=True, text=True
    )
    assert done.returncode == 0, f"stages/{name}.py failed:\n{done.stdout}\n{done.stderr[-4000:]}"


def _write_inputs(root: Path) -> list[records.Prompt]:
    params = merge(read_yaml(REPO / "params.yaml"), read_yaml(REPO / "profiles" / "tiny.yaml"))
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    records.write_jsonl(root / "data" / "curated" / "train.jsonl", toy_examples(6))
    origin = records.Origin(source="test_prompts", file="data/sources/prompts/test.jsonl", row="0")
    texts = ["Why is the sky blue?", "Write a list of three colours.", "Explain a loop in one long sentence, please."]
    prompts = [records.Prompt(text=t, split="test", origin=origin) for t in texts]
    prompts.append(records.Prompt(text="A dev prompt, not answered here.", split="dev", origin=origin))
    records.write_parquet(root / "data" / "validated" / "prompts.parquet", prompts)
    return [p for p in prompts if p.split == "test"]


@pytest.mark.slow
def test_model_train_generate_stages(tmp_path):
    test_prompts = _write_inputs(tmp_path)
    for stage in (("model",), ("train",), ("generate", "finetuned"), ("generate", "base")):
        _run_stage(stage[0], tmp_path, *stage[1:])

    # ---------------------------------------------------------------- model
    base = tmp_path / "models" / "base"
    base_hash = checkpoint_hash(base)
    assert json.loads((base / "lessismore.json").read_text())["checkpoint"] == base_hash

    # ---------------------------------------------------------------- train
    final = tmp_path / "models" / "finetuned"
    meta = json.loads((final / "lessismore.json").read_text())
    assert meta == {
        "method": "lora",
        "base": "models/base",
        "base_checkpoint": base_hash,
        "checkpoint": meta["checkpoint"],
    }
    assert meta["checkpoint"] == checkpoint_hash(final) != base_hash
    assert (final / "adapter_model.safetensors").exists() and not (final / "model.safetensors").exists()
    train_metrics = json.loads((tmp_path / "metrics" / "train.json").read_text())
    assert train_metrics["counts"]["examples"] == 6 and train_metrics["steps"] == 3  # tiny: max_steps 3
    assert train_metrics["tokens"] > 0 and train_metrics["final_loss"] > 0 and train_metrics["method"] == "lora"
    steps, _ = read_steps(tmp_path / "logs" / "train")  # DVCLive's per-step log
    assert [int(s["step"]) for s in steps] == [1, 2, 3]
    card = (final / "README.md").read_text()  # the model card, its numbers those of metrics/train.json
    assert f"{train_metrics['steps']} optimizer steps over {train_metrics['tokens']} tokens" in card

    # ---------------------------------------------------------------- generate
    outputs = {}
    for name, checkpoint in (("finetuned", meta["checkpoint"]), ("base", base_hash)):
        gen_metrics = json.loads((tmp_path / "metrics" / "generate" / f"{name}.json").read_text())
        assert gen_metrics["responses"] == 3 and gen_metrics["checkpoint"] == checkpoint
        responses = records.read_jsonl(tmp_path / "outputs" / "responses" / f"{name}.jsonl", records.Response)
        assert [r.prompt_id for r in responses] == [p.id for p in test_prompts]  # test split only, input order
        assert {r.model for r in responses} == {name} and {r.checkpoint for r in responses} == {checkpoint}
        assert responses[0].decoding == {
            "top_p": 0.9,
            "temperature": 0.7,
            "repetition_penalty": 1.2,
            "max_new_tokens": 8,
            "seed": 1234,
        }
        assert all(0 < r.meta["new_tokens"] <= 8 and r.meta["finish_reason"] in ("eot", "length") for r in responses)
        assert sum(gen_metrics["finish_reasons"].values()) == 3
        outputs[name] = (tmp_path / "outputs" / "responses" / f"{name}.jsonl").read_text()

    # a rerun reproduces every answer byte for byte (seeded per batch)
    for name, text in outputs.items():
        _run_stage("generate", tmp_path, name)
        assert (tmp_path / "outputs" / "responses" / f"{name}.jsonl").read_text() == text


@pytest.mark.slow
def test_train_stage_with_lima_knobs_new_eot_dropout_and_dev_loss_selection(tmp_path, monkeypatch):
    _write_inputs(tmp_path)
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    lima = {
        "eot": "new_token",
        "residual_dropout": 0.2,
        "select": "dev_loss",
        "dev_holdout": 2,
        "select_epochs": [2, 3],
    }
    params["train"] |= {"epochs": 3, "max_steps": 0, "batch_size": 2, "grad_accum": 1, **lima}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    for stage in ("model", "train"):
        _run_stage(stage, tmp_path)
    metrics = json.loads((tmp_path / "metrics" / "train.json").read_text())
    assert metrics["dev_holdout"] == 2 and metrics["counts"]["examples"] == 4  # 2 of the 6 held out to score epochs
    assert metrics["eot"] == {"mode": "new_token", "token": "<|eot|>"}
    assert metrics["residual_dropout"][0] == 0.0 and metrics["residual_dropout"][-1] == pytest.approx(0.2)
    sel = metrics["selection"]
    scored = [c for c in sel["candidates"] if c["candidate"]]
    assert [c["epoch"] for c in scored] == [2, 3] and all(c["score"] is not None for c in scored)
    best = min(scored, key=lambda c: c["score"])
    assert sel["chosen_epoch"] == best["epoch"]
    final = tmp_path / "models" / "finetuned"
    assert "<|eot|>" in (final / "tokenizer_config.json").read_text() + (final / "tokenizer.json").read_text()
    assert not list(final.glob("*.pt")) and json.loads((final / "lessismore.json").read_text())["checkpoint"]
    from lessismore.models import load_causal_lm

    monkeypatch.chdir(tmp_path)  # the adapter names its base as models/base, relative to the project
    model, tokenizer = load_causal_lm(final)  # the adapter's extra token row loads onto the resized base
    assert model.get_input_embeddings().num_embeddings == len(tokenizer)


@pytest.mark.slow
def test_train_stage_selects_the_epoch_by_judging_dev_answers(tmp_path):
    _write_inputs(tmp_path)
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    judge = judge_entry(name="dev-judge", model="base", mode="logprobs", calibrate=True, absolute_template="")
    params["train"] |= {
        "epochs": 3,
        "max_steps": 0,
        "batch_size": 2,
        "grad_accum": 1,
        "select": "judge",
        "select_epochs": [2, 3],
        "select_judge": judge,
        "select_decoding": dev_decoding(max_new_tokens=6, batch_size=4),
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    for stage in ("model", "train"):
        _run_stage(stage, tmp_path)
    sel = json.loads((tmp_path / "metrics" / "train.json").read_text())["selection"]
    scored = [c for c in sel["candidates"] if c["candidate"]]
    assert [c["epoch"] for c in scored] == [2, 3] and all(0 <= c["score"] <= 1 for c in scored)
    assert sel["chosen_epoch"] == max(scored, key=lambda c: (c["score"], -c["epoch"]))["epoch"]
    # every dev verdict is in the cache kept with the checkpoints: 1 dev prompt x 2 orders per epoch + 3 priors;
    # two epochs that give the same answer (a 6-token answer of a random model may) share their verdicts
    cache = (tmp_path / "models" / "checkpoints" / "dev_judgments.jsonl").read_text().splitlines()
    assert 3 + 2 <= len(cache) <= 3 + 2 * 2
