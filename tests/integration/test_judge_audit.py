"""`lessismore judge-audit` on the shipped labelled set (data/audit/pairs.jsonl) with a real local judge (the tiny
random model): every pair judged in both orders, the agreement measures with intervals, the judge's reliability,
and a clear error for a judge that is not configured."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from lessismore.cli import app
from lessismore.config import merge, read_yaml
from tests.conftest import REPO

pytestmark = pytest.mark.slow


def test_the_shipped_set_is_audited_with_intervals(tmp_path, tiny_model_dir):
    params = merge(read_yaml(REPO / "params.yaml"), read_yaml(REPO / "profiles" / "tiny.yaml"))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    shutil.copytree(tiny_model_dir, tmp_path / "models" / "base")
    shutil.copytree(REPO / "data" / "audit", tmp_path / "data" / "audit")
    pairs = ["--pairs", "data/audit/pairs.jsonl"]  # relative to --root, as `make audit` passes it
    result = CliRunner().invoke(app, ["judge-audit", *pairs, "--root", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout[result.stdout.index("{") :])
    assert out["judge"] == "tiny-random-local" and out["pairs"] == 60 and out["refused"] == 0
    assert out["labels"] == {"win": 25, "tie": 10, "loss": 25}  # the better answer second in half the pairs
    for key in ("agreement", "tie_discounted", "agreement_without_ties"):
        m = out[key]
        assert m["n"] == (50 if key == "agreement_without_ties" else 60)
        assert 0 <= m["ci"][0] <= m["value"] <= m["ci"][1] <= 1
    assert out["reliability"]["valid_pairs"] + out["unreadable"] == 60 and out["calls"] > 0

    bad = CliRunner().invoke(app, ["judge-audit", *pairs, "--root", str(tmp_path), "--judge", "nope"])
    assert bad.exit_code == 2 and "--judge 'nope': not in params judge.judges" in bad.output


def test_the_shipped_labels_alternate_the_better_position():
    rows = [json.loads(line) for line in (REPO / "data" / "audit" / "pairs.jsonl").read_text().splitlines()]
    assert len(rows) == 60 and {r["label"] for r in rows} == {0, 1, 2}
    decisive = [r["label"] for r in rows if r["label"]]
    assert decisive.count(1) == decisive.count(2) == 25
    assert Path(REPO / "data" / "audit" / "README.md").read_text().startswith("# The judge-audit set")
