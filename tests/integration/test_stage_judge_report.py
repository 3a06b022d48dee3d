"""stages/judge.py then stages/report.py in a temp directory, on a tiny random model and responses written here."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lessismore import records
from lessismore.config import merge, read_yaml
from lessismore.records import Origin, Prompt, Response
from tests.specs import judge_entry

REPO = Path(__file__).resolve().parents[2]


def _run(stage: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "DO_NOT_TRACK": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(
        [sys.executable, str(REPO / "stages" / f"{stage}.py")],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"{stage} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


JUDGES = [
    judge_entry(name="tiny-logprobs", model="base", mode="logprobs", calibrate=True, batch_size=3),
    judge_entry(
        name="tiny-generate", model="base", mode="generate", calibrate=False, max_new_tokens=4, absolute_template=""
    ),
]


def _workspace(root: Path, tiny_model_dir: Path) -> list[Prompt]:
    params = merge(read_yaml(REPO / "params.yaml"), read_yaml(REPO / "profiles" / "tiny.yaml"))
    panel = {"judges": ["tiny-logprobs", "tiny-generate"], "combine": "mean"}
    judge = {"judges": JUDGES, "primary": "tiny-logprobs", "injection": {"pairs": 2}, "panel": panel}
    params = merge(params, {"judge": judge})
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    shutil.copytree(tiny_model_dir, root / "models" / "base")
    origin = Origin("test_prompts", "data/sources/prompts/test.jsonl", "0")
    prompts = [
        Prompt(text=f"Question {i}: how do I <b>fix</b> thing {i}?", split="test", origin=origin) for i in range(4)
    ]
    prompts.append(Prompt(text="A dev prompt, not judged.", split="dev", origin=origin))
    records.write_parquet(root / "data" / "validated" / "prompts.parquet", prompts)
    for model in ("finetuned", "base"):
        rows = [
            Response(
                prompt_id=p.id,
                model=model,
                checkpoint="c",
                decoding={"seed": 1},
                text=f"{model} answer {i}: " + "step " * (i + 1) + ("<script>x()</script>" if i == 1 else ""),
            )
            for i, p in enumerate(prompts)
        ]
        if model == "base":
            rows = rows[1:]  # base never answered prompt 0: that pair cannot be formed and is counted as unpaired
        records.write_jsonl(root / "outputs" / "responses" / f"{model}.jsonl", rows)
    (root / "metrics").mkdir()
    (root / "metrics" / "ingest.json").write_text(json.dumps({"counts": {"examples": 40, "prompts": 5}}))
    (root / "dvc.lock").write_text(
        "schema: '2.0'\nstages:\n  train:\n    cmd: python stages/train.py\n    outs:\n"
        "    - path: models/finetuned\n      hash: md5\n      md5: abc123.dir\n      size: 10\n      nfiles: 2\n"
    )
    return prompts


@pytest.mark.slow
def test_two_judges_then_a_warm_rerun_then_the_report(tmp_path, tiny_model_dir):
    prompts = _workspace(tmp_path, tiny_model_dir)
    _run("judge", tmp_path)

    judgments = records.read_jsonl(tmp_path / "outputs" / "judgments.jsonl", records.Judgment)
    ratings = records.read_jsonl(tmp_path / "outputs" / "ratings.jsonl", records.Rating)
    injected = records.read_jsonl(tmp_path / "outputs" / "injection.jsonl", records.Judgment)
    metrics = json.loads((tmp_path / "metrics" / "judge.json").read_text())
    # 3 test prompts answered by both models, in 2 orders, by 2 judges; the dev prompt is ignored
    assert len(judgments) == 2 * 3 * 2 and {j.judge for j in judgments} == {"tiny-logprobs", "tiny-generate"}
    assert {j.prompt_id for j in judgments} == {p.id for p in prompts[1:4]}
    assert len(ratings) == 4 + 3 and {r.model for r in ratings} == {"finetuned", "base"}  # only the first grades
    assert len(injected) == 2 * 2 * 2 and all(j.meta.get("truncated") is not None for j in injected)
    assert metrics["counts"] == {"judgments": 12, "pairs": 3, "ratings": 7, "injected": 8, "judges": 2}
    assert metrics["unpaired"] == {"base": 1} and metrics["primary"] == "tiny-logprobs"
    head = metrics["judges"]["tiny-logprobs"]
    assert metrics["baselines"] == head["baselines"] and head["template"] == judgments[0].template
    base = metrics["baselines"]["base"]
    assert base["n"] + base["invalid"] == 3 and sum(base["counts"].values()) == base["n"]
    assert base["invalid"] == 0 and metrics["reliability"]["invalid_rate"] == 0  # a forward pass is always readable
    assert all(len(base["ci"][k]) == 2 for k in ("win", "tie", "loss"))
    assert set(metrics["reliability"]) >= {
        "position_consistency",
        "first_position_preference",
        "invalid_rate",
        "length_bias",
        "inconsistent_pairs",
    }
    assert set(metrics["grades"]) == {"finetuned", "base"} and "ci" in metrics["grades"]["base"]
    assert metrics["ratings"]["base"]["rating"] == 1000 and set(metrics["ratings"]) == {"finetuned", "base"}
    assert metrics["injection"]["pairs"] == 2 and set(metrics["injection"]["by_attack"]) <= {
        "ignore_instructions",
        "fake_verdict_tag",
        "forged_fence",
        "claims_about_other",
        "fake_system",
    }
    assert list(metrics["agreement"]) == ["tiny-generate~tiny-logprobs"]
    assert metrics["agreement"]["tiny-generate~tiny-logprobs"]["shared"] == 3  # both judged the same 3 pairs
    panel = metrics["panel"]  # the two judges read as one: the pairs both judged, the majority's outcome
    assert panel["judges"] == ["tiny-logprobs", "tiny-generate"] and panel["pairs"] == 3
    assert panel["baselines"]["base"]["n"] + panel["baselines"]["base"]["invalid"] == 3
    assert "soft" in panel["baselines"]["base"] and "length_controlled" in base and "style_control" in head
    # what this run cost goes to the timing file: it depends on the cache, not on the verdicts
    assert "cost" not in head and "cache" not in metrics
    costs = json.loads((tmp_path / "metrics" / "timing" / "judge.json").read_text())["judges"]
    # calls: 6 pairwise + 4 injection + 7 grades + 3 content-free priors x 2 templates for the calibrated judge
    assert costs["tiny-logprobs"]["calls"] == 6 + 4 + 7 + 6 and costs["tiny-logprobs"]["cached"] == 0
    assert costs["tiny-generate"]["calls"] == 6 + 4 and costs["tiny-generate"]["prompt_tokens"] > 0

    assert metrics["humans"] is None  # nobody has judged yet
    first_metrics = metrics
    # two people judged the three pairs (as `lessismore annotate --export` writes them): they agree on two of three
    human = [
        {"kind": "pairwise", "annotator": who, "prompt_id": p.id, "baseline": "base", "outcome": out}
        for who, outs in (("ann", ["win", "tie", "loss"]), ("bob", ["win", "tie", "win"]))
        for p, out in zip(prompts[1:4], outs, strict=True)
    ]
    human.append(
        {"kind": "absolute", "annotator": "ann", "prompt_id": prompts[1].id, "model": "finetuned", "outcome": "pass"}
    )
    records.write_jsonl(tmp_path / "outputs" / "human_judgments.jsonl", human)
    _run("judge", tmp_path)  # nothing else changed: every verdict comes from the cache
    metrics = json.loads((tmp_path / "metrics" / "judge.json").read_text())
    costs = json.loads((tmp_path / "metrics" / "timing" / "judge.json").read_text())["judges"]
    assert costs["tiny-logprobs"]["calls"] == 0 and costs["tiny-generate"]["calls"] == 0
    assert costs["tiny-logprobs"]["cached"] == 6 + 4 + 7
    assert metrics["baselines"] == first_metrics["baselines"] and metrics["ratings"] == first_metrics["ratings"]
    humans = metrics["humans"]
    assert humans["annotators"] == ["ann", "bob"] and humans["baselines"]["base"]["counts"] == {
        "win": 3,
        "tie": 2,
        "loss": 1,
    }
    assert humans["grades"]["finetuned"]["pass"] == 1.0
    ann_bob = humans["agreement"]["human:ann~human:bob"]
    assert ann_bob["n"] == 3 and ann_bob["tie_discounted"] == pytest.approx(2 / 3, abs=1e-6)
    assert {"human:ann~tiny-logprobs", "human:bob~tiny-generate"} <= set(humans["agreement"])

    _run("report", tmp_path)
    html = (tmp_path / "reports" / "index.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.IGNORECASE)
    assert "<svg" in html and "<path" in html and "&lt;script&gt;" in html and "<script" not in html
    assert "abc123.dir" in html and "tiny-smoke" in html and "How reliable is the judge?" in html
    assert "Bradley–Terry" in html and "Agreement between judges" in html and "Verdict injection" in html
    assert 'id="panel"' in html and "Panel of tiny-logprobs, tiny-generate (mean)" in html
    assert "Human judgments" in html and "human:ann~human:bob" in html
    # charts with data are drawn (Figure 1, Figure 3, stage timings); stages without metrics say so, nothing crashes
    assert html.count("<svg") == 3 and 'aria-label="win, tie and loss' in html and "seconds per stage" in html
    assert "Not run: the curate stage" in html and "Not run: the train stage" in html and 'id="ablation"' not in html
    assert "http://" not in html and "https://" not in html
