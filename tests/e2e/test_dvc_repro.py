"""End to end: `dvc repro` of the real pipeline in a fresh git + DVC repo, on the tiny random model.

Every stage runs for real (Great Expectations, selection by model-based scores (profiles/scored.yaml: the tiny model
scores IFD and rates quality and complexity), LoRA training, generation, the judge, the report); only the model is
tiny. Then a second `dvc repro` must be a no-op, and a second fresh workspace must reproduce every output byte for
byte, but for the few that contract.VOLATILE declares volatile by nature.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import yaml

from tests.conftest import make_pipeline_repo, run_env

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PROFILES = ("tiny", "scored")  # the tiny model, selecting by scores (the demo's lima is tested in integration/)
STAGES = ["ingest", "validate", "curate", "model", "train", "generate@finetuned", "generate@base", "judge", "report"]


def _dvc(repo, *args) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=repo, env=run_env(), capture_output=True, text=True
    )
    assert proc.returncode == 0, f"dvc {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """The pipeline, run once with `dvc repro` in a fresh git + DVC repository (shared by this module's tests)."""
    repo = make_pipeline_repo(tmp_path_factory.mktemp("first") / "repo", *PROFILES)
    _dvc(repo, "repro")
    return repo


def test_dvc_repro_end_to_end_then_noop(ran):
    repo = ran

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
    _selected_by_scores_that_are_kept(repo, curated)

    judge = json.loads((repo / "metrics/judge.json").read_text())
    base = judge["baselines"]["base"]
    assert judge["counts"]["judgments"] == 2 * judge["counts"]["pairs"] > 0  # both orders, every pair
    if base["n"]:
        assert abs(base["win"] + base["tie"] + base["loss"] - 1) < 1e-9

    html = (repo / "reports/index.html").read_text()
    assert "<svg" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "the report must not load anything remote"
    checkpoint = next(o for o in lock["stages"]["train"]["outs"] if o["path"] == "models/finetuned")
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


def _selected_by_scores_that_are_kept(repo, curated: list[str]) -> None:
    """Variant scored: every selected example carries its scores, every scored drop says why with them, and each
    score is a row of the cache (data/scores.jsonl) by content."""
    assert json.loads((repo / "metrics/curate.json").read_text())["variant"] == "scored"
    cache = [json.loads(line) for line in (repo / "data/scores.jsonl").read_text().splitlines()]
    assert {row["kind"] for row in cache} == {"quality", "complexity", "ifd"}
    for line in curated:
        scores = json.loads(line)["meta"]["scores"]
        assert set(scores) == {"quality", "complexity", "ifd", "combined"} and scores["combined"] is not None
    drops = [json.loads(line) for line in (repo / "data/quarantine/curate.jsonl").read_text().splitlines()]
    scored = [d for d in drops if "scores" in d["record"]["meta"]]
    assert scored and all("scores:" in d["detail"] for d in scored)


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
    card = ModelCard.load(repo / "models/finetuned/README.md")
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


def test_a_second_workspace_reproduces_every_output_byte_for_byte(ran, tmp_path):
    """Outputs are a function of code, params, inputs and seed: a second fresh workspace of the same commit writes
    the same bytes everywhere but in the declared volatile outputs; a difference names the file and its first line."""
    from lessismore.contract import VOLATILE

    second = make_pipeline_repo(tmp_path / "repo", *PROFILES)
    _dvc(second, "repro")
    a, b = (_lock_outs(r) for r in (ran, second))
    assert sorted(a) == sorted(b)
    volatile = [str(p) for p in VOLATILE]
    differing = [path for path in sorted(a) if a[path] != b[path]]
    unexpected = [p for p in differing if not any(p == v or p.startswith(v + "/") for v in volatile)]
    assert unexpected == [], first_difference(ran, second, unexpected[0])
    assert len(a) > 25 and "models/finetuned" in a and "outputs/judgments.jsonl" in a  # the lock was read, not empty


def _lock_outs(repo) -> dict[str, str]:
    """Every out of every stage in dvc.lock (metrics and plots included): path -> md5."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    return {o["path"]: o["md5"] for stage in lock["stages"].values() for o in stage.get("outs", [])}


def first_difference(a, b, path: str) -> str:
    """Where two copies of an output first differ: the file, then its first differing line, or the first tensor
    of a safetensors file with its largest absolute difference."""
    pa, pb = a / path, b / path
    files = sorted(p.relative_to(pa) for p in pa.rglob("*") if p.is_file()) if pa.is_dir() else [None]
    for rel in files:
        fa, fb = (pa / rel, pb / rel) if rel else (pa, pb)
        if not fb.exists() or fa.read_bytes() != fb.read_bytes():
            return f"{path} differs between two runs of one commit: {_describe(fa, fb)}"
    return f"{path}: the same files, but DVC hashed them differently (a file only in the second run?)"


def _describe(fa, fb) -> str:
    if not fb.exists():
        return f"{fa.name} is missing from the second run"
    if fa.suffix == ".safetensors":
        from safetensors.torch import load_file

        ta, tb = load_file(fa), load_file(fb)
        for name in sorted(ta):
            if name not in tb or not ta[name].equal(tb[name]):
                diff = (ta[name] - tb[name]).abs().max().item() if name in tb else "missing"
                return f"{fa}: tensor {name} first differs (max abs diff {diff})"
    la, lb = fa.read_text(errors="replace").splitlines(), fb.read_text(errors="replace").splitlines()
    for i, (x, y) in enumerate(zip(la, lb, strict=False), 1):
        if x != y:
            return f"{fa} line {i}:\n  first:  {x[:300]}\n  second: {y[:300]}"
    return f"{fa}: {len(la)} lines against {len(lb)}"


def test_a_difference_is_named_by_file_and_line_or_tensor(tmp_path):
    """The double-run check is not vacuous: a planted difference is reported where it is."""
    import torch
    from safetensors.torch import save_file

    a, b = tmp_path / "a", tmp_path / "b"
    for root, text, value in ((a, "same\nfirst\n", 1.0), (b, "same\nsecond\n", 1.5)):
        (root / "out").mkdir(parents=True)
        (root / "out" / "x.jsonl").write_text(text)
        save_file({"w": torch.full((2,), value), "v": torch.zeros(1)}, root / "weights.safetensors")
    assert "x.jsonl line 2:\n  first:  first\n  second: second" in first_difference(a, b, "out")
    assert "tensor w first differs (max abs diff 0.5)" in first_difference(a, b, "weights.safetensors")
