"""`lessismore profile NAME`: an overlay merged into params.yaml in place, every comment and the layout kept."""

from __future__ import annotations

import shutil

from typer.testing import CliRunner

from lessismore.cli import app
from lessismore.config import load_params
from tests.specs import REPO


def _root(tmp_path):
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    shutil.copytree(REPO / "profiles", tmp_path / "profiles")
    return tmp_path


def test_a_profile_changes_only_its_values_and_keeps_every_comment(tmp_path):
    root = _root(tmp_path)
    before = (root / "params.yaml").read_text()
    done = CliRunner().invoke(app, ["profile", "lima", "--root", str(root)])
    assert done.exit_code == 0, done.output
    after = (root / "params.yaml").read_text()
    comments = [line.split("#", 1)[1] for line in before.splitlines() if "#" in line]
    assert len(comments) > 50 and all(c in after for c in comments)  # not one comment lost
    assert "  lr: 1.0e-5 " in after  # written as the profile wrote it: PyYAML would read 1e-05 as a string
    p = load_params(root / "params.yaml", profile=None)
    assert (p.train.method, p.train.lr, p.curate.budget, p.base.experiment) == (
        "full",
        1e-5,
        1000,
        "lima-reproduction",
    )
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True) if a != b]
    assert 10 < len(changed) < 30  # the overlay's values, line for line; nothing else moved


def test_an_invalid_result_is_refused_and_the_file_untouched(tmp_path):
    root = _root(tmp_path)
    (root / "profiles" / "broken.yaml").write_text("train:\n  lr: fast\ncurate:\n  budget: -1\n")
    before = (root / "params.yaml").read_text()
    done = CliRunner().invoke(app, ["profile", "broken", "--root", str(root)])
    assert done.exit_code == 2
    assert "train.lr: expected float" in done.output and "curate.budget: must be > 0" in done.output
    assert (root / "params.yaml").read_text() == before
