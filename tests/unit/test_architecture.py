"""House rules that keep the code simple and the lineage exact: leaves stay leaves, heavy imports stay lazy, no
import cycles, and each DVC stage's contract (contract.py) and code deps (its import closure) match dvc.yaml."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.importgraph import ImportGraph, exact_deps

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


def _dvc_stages() -> dict:
    """dvc.yaml's stages as written: a `foreach` stage as its template (`do`), its `foreach` kept in it."""
    import yaml

    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    return {name: {**s["do"], "foreach": s["foreach"]} if "foreach" in s else s for name, s in stages.items()}


def _paths(entries: list) -> list[str]:
    """dvc.yaml deps / outs / metrics / plots entries -> their paths (an entry is a path or {path: options})."""
    return [e if isinstance(e, str) else next(iter(e)) for e in entries or []]


def test_every_dvc_stage_has_its_script_and_lists_it_as_its_first_dep():
    for name, stage in _dvc_stages().items():
        script = f"stages/{name}.py"
        entry = {"${generate.models}": " ${item}", "${generate.baselines}": " ${key}"}.get(stage.get("foreach"), "")
        assert stage["cmd"] == f"python {script}{entry}", name  # a foreach stage passes its entry's name
        assert (REPO / script).exists(), script
        assert _paths(stage["deps"])[0] == script, f"{name}: its own script is not its first dep"


def _code_gaps(graph: ImportGraph, stages: dict, root: Path = REPO) -> list[str]:
    """For each stage: the project files it runs that no dep covers, and the code deps it does not run."""
    problems = []
    for name, stage in stages.items():
        want = exact_deps(graph.closure(REPO / f"stages/{name}.py"), root)
        have = [d for d in _paths(stage["deps"]) if d.startswith("src/")]
        missing, extra = [d for d in want if d not in have], [d for d in have if d not in want]
        if missing:
            problems.append(f"{name}: add to its deps in dvc.yaml: {missing}")
        if extra:
            problems.append(f"{name}: remove from its deps (the stage does not run them): {extra}")
    return problems


def test_each_stages_code_deps_are_exactly_its_import_closure():
    """A change to any module a stage runs (transitively, lazy imports too) re-runs the stage; nothing else does."""
    graph = ImportGraph(REPO / "src")
    assert "src/lessismore/records.py" in {str(p.relative_to(REPO)) for p in graph.closure(REPO / "stages/judge.py")}
    assert _code_gaps(graph, _dvc_stages()) == []


def test_the_closure_check_catches_a_planted_uncovered_import(tmp_path):
    """The check is not vacuous: a stage that starts importing a module its deps miss is reported."""
    import shutil

    src = tmp_path / "src"
    shutil.copytree(REPO / "src" / "lessismore", src / "lessismore", ignore=shutil.ignore_patterns("__pycache__"))
    parse = src / "lessismore" / "judge" / "parse.py"
    parse.write_text(parse.read_text() + "\n\ndef _planted():\n    from lessismore import explain  # noqa\n")
    graph = ImportGraph(src)
    stages = _dvc_stages()
    closure = {str(p.relative_to(tmp_path)) for p in graph.closure(REPO / "stages/judge.py")}
    assert "src/lessismore/explain.py" in closure  # reached only through judge/protocol.py -> parse.py, lazily
    gaps = _code_gaps(graph, stages, tmp_path)
    assert any(g.startswith("judge: add to its deps") and "src/lessismore/explain.py" in g for g in gaps), gaps
    assert any(g.startswith("train: add to its deps") for g in gaps), gaps  # train judges epochs: it runs parse.py


def test_no_import_cycles_in_src():
    assert ImportGraph(REPO / "src").cycles() == []


def test_a_planted_cycle_is_found(tmp_path):
    pkg = tmp_path / "lessismore"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from lessismore import b\n")
    (pkg / "b.py").write_text("from lessismore.a import f\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from lessismore import a\n")
    assert ImportGraph(tmp_path).cycles() == [["lessismore.a", "lessismore.b"]]


def test_dvc_yaml_matches_each_stages_declared_contract():
    """contract.py names every path and params key a stage uses; dvc.yaml must list exactly the same."""
    from lessismore.contract import STAGES

    stages = _dvc_stages()
    assert sorted(stages) == sorted(STAGES)
    for name, declared in STAGES.items():
        stage = stages[name]
        data_deps = [d for d in _paths(stage["deps"]) if not d.startswith(("src/", "stages/"))]
        assert data_deps == [str(p) for p in declared.reads], name
        writes = _paths(stage.get("outs")) + _paths(stage.get("metrics")) + _paths(stage.get("plots"))
        assert sorted(writes) == sorted(str(p) for p in declared.writes), name
        assert stage["params"] == list(declared.params), name
        assert stage.get("foreach", "") == ("${" + declared.foreach + "}" if declared.foreach else ""), name


def _string_constants(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every string constant in the module's code; docstrings (and their doctests) left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs
    ]


def test_no_path_literal_outside_the_contract():
    """Pipeline paths are named once (contract.py): stage scripts, the library and the flows import them."""
    import re

    literal = re.compile(r"^(data|models|outputs|metrics|logs|reports)/[\w./-]+$")
    offenders = []
    for folder in ("stages", "src/lessismore", "flows"):
        for path in (REPO / folder).rglob("*.py"):
            if path.name != "contract.py":
                rel = path.relative_to(REPO)
                offenders += [f"{rel}:{i}: {text!r}" for i, text in _string_constants(path) if literal.match(text)]
    assert offenders == []


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
