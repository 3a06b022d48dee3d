"""End to end: `dvc repro` of the real pipeline in a fresh git + DVC repo, on the tiny random model.

Every stage runs for real (Great Expectations, LoRA training, generation, the judge, the report); only the model is
tiny. Then a second `dvc repro` must be a no-op.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import yaml

from tests.conftest import run_env

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

STAGES = ["ingest", "validate", "curate", "model", "train", "generate", "judge", "report"]


def _dvc(repo, *args) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=repo, env=run_env(), capture_output=True, text=True
    )
    assert proc.returncode == 0, f"dvc {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout + proc.stderr


def test_dvc_repro_end_to_end_then_noop(pipeline_repo):
    repo = pipeline_repo
    _dvc(repo, "repro")

    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    assert sorted(lock["stages"]) == sorted(STAGES)

    # every record that went in is accounted for: kept, or quarantined with a reason
    ingest = json.loads((repo / "metrics/ingest.json").read_text())
    validate = json.loads((repo / "metrics/validate.json").read_text())
    assert ingest["counts"]["dropped"] >= 1, "the planted malformed line must be quarantined at ingest"
    assert validate["counts"]["quarantined"] >= 1, "the planted empty answer must be quarantined by validate"
    for stage in ("ingest", "validate", "curate"):
        for line in (repo / f"data/quarantine/{stage}.jsonl").read_text().splitlines():
            row = json.loads(line)
            assert row["reason"] and row["origin"]["file"], row

    curated = (repo / "data/curated/train.jsonl").read_text().splitlines()
    assert 0 < len(curated) <= 24  # the tiny profile's budget

    judge = json.loads((repo / "metrics/judge.json").read_text())
    base = judge["baselines"]["base"]
    assert judge["counts"]["judgments"] == 2 * judge["counts"]["pairs"] > 0  # both orders, every pair
    if base["n"]:
        assert abs(base["win"] + base["tie"] + base["loss"] - 1) < 1e-9

    html = (repo / "reports/index.html").read_text()
    assert "<svg" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "the report must not load anything remote"
    checkpoint = next(o for o in lock["stages"]["train"]["outs"] if o["path"] == "models/final")
    assert checkpoint["md5"] in html, "lineage must show the checkpoint's dvc.lock hash"
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    assert commit in html, "lineage must show the git commit"

    _cards_match_the_metrics(repo, judge)
    _dvc_plots_reads_the_dvclive_log(repo)

    before = (repo / "dvc.lock").read_bytes()
    out = _dvc(repo, "repro")
    assert all(f"'{s}' didn't change" in out for s in STAGES), out
    assert (repo / "dvc.lock").read_bytes() == before
    assert "up to date" in _dvc(repo, "status")


def _cards_match_the_metrics(repo, judge: dict) -> None:
    """The dataset card (curate), the model card (train) and the published card (report) say what the metrics say."""
    from huggingface_hub import DatasetCard, ModelCard

    curate = json.loads((repo / "metrics/curate.json").read_text())
    data_card = DatasetCard.load(repo / "data/curated/README.md")
    counts = curate["counts"]
    assert (
        f"{counts['selected']} instruction/response conversations chosen from {counts['candidates']}" in data_card.text
    )
    for name, n in curate["per_source"].items():
        assert f"| {n['candidates']} | {n['selected']} |" in data_card.text, name

    train = json.loads((repo / "metrics/train.json").read_text())
    card = ModelCard.load(repo / "models/final/README.md")
    assert card.data.library_name == "peft" and card.data.license
    assert f"{train['steps']} optimizer steps over {train['tokens']} tokens" in card.text
    assert f"final loss {train['final_loss']}" in card.text and f"`{train['checkpoint']}`" in card.text
    assert f"{train['counts']['examples']} examples from `data/curated/train.jsonl`" in card.text

    published = ModelCard.load(repo / "reports/model_card.md")
    base = judge["baselines"]["base"]
    results = {r.metric_type: r.metric_value for r in published.data.eval_results or []}
    expected = {f"{o}_rate": base[o] for o in ("win", "tie", "loss") if base[o] is not None}
    assert results == expected and published.text.startswith(card.text.rstrip()[:200])


def _dvc_plots_reads_the_dvclive_log(repo) -> None:
    """`dvc plots show` draws DVCLive's per-step files: one plot a column, a point per optimizer step."""
    train = json.loads((repo / "metrics/train.json").read_text())
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", "plots", "show", "--json"],
        cwd=repo,
        env=run_env(),
        capture_output=True,
        text=True,
    )
    shown = json.loads(proc.stdout)["data"]
    assert {"logs/train/plots/metrics/loss.tsv", "logs/train/plots/metrics/lr.tsv"} <= set(shown), sorted(shown)
    points = [row for plot in shown["logs/train/plots/metrics/loss.tsv"] for row in plot["content"]["data"]["values"]]
    assert [int(p["step"]) for p in points] == list(range(1, train["steps"] + 1))
