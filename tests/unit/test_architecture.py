"""House rules that keep the code simple: leaves stay leaves, heavy imports stay lazy."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LEAVES = ("stages", "flows")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_nothing_imports_stages_or_flows():
    offenders = []
    for folder in ("src", "stages", "flows", "tests", "benchmarks"):
        for path in (REPO / folder).rglob("*.py"):
            bad = {n for n in _imports(path) if n.split(".")[0] in LEAVES}
            offenders += [f"{path.relative_to(REPO)} imports {n}" for n in sorted(bad)]
    assert offenders == []


def test_every_dvc_stage_has_its_script_and_lists_it_as_a_dep():
    import yaml

    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    for name, stage in dvc["stages"].items():
        script = f"stages/{name}.py"
        assert stage["cmd"] == f"python {script}", name
        assert (REPO / script).exists(), script
        assert script in stage["deps"], f"{name}: its own script is not a dep"
        assert any(d.startswith("src/lessismore/") for d in stage["deps"]), f"{name}: its core is not a dep"


def test_cli_import_is_light():
    """`lessismore --help` must stay instant: importing the CLI pulls no heavy library."""
    heavy = [
        "torch",
        "transformers",
        "peft",
        "great_expectations",
        "sentence_transformers",
        "prefect",
        "dvc",
        "pandas",
    ]
    code = "import sys, lessismore.cli, lessismore.config, lessismore.records; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert [m for m in heavy if m in out] == []


def test_ruff_lint_and_format_are_clean():
    """Style is checked where CI looks: `make test`. Fix with `make format`."""
    folders = ["src", "stages", "flows", "tests", "benchmarks"]
    for args in (["check", *folders], ["format", "--check", *folders]):
        proc = subprocess.run([sys.executable, "-m", "ruff", *args], cwd=REPO, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
