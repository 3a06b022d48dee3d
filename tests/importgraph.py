"""The project's import graph, read from the source (ast), for the house-rule tests in tests/unit/test_architecture.py.

Two questions are answered here:
- which project files a DVC stage runs: its script plus every `lessismore` module it imports, transitively, lazy
  imports inside functions included (they run too), `if TYPE_CHECKING:` imports excluded (they never run); a module
  brings its parent packages' `__init__.py` (Python runs them first) and the data folders of its package that hold
  no Python (judge/prompts/*.txt, report/templates/*: read at run time, so they are code too);
- whether two modules import each other, directly or around a longer loop.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

PACKAGE = "lessismore"


def _type_checking_block(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def _import_nodes(tree: ast.AST) -> Iterable[ast.Import | ast.ImportFrom]:
    stack = [tree]
    while stack:
        node = stack.pop()
        if _type_checking_block(node):
            stack.extend(node.orelse)  # only the `else:` branch runs
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        stack.extend(ast.iter_child_nodes(node))


class ImportGraph:
    """The `lessismore` modules under `src` and what each one imports (module names, e.g. 'lessismore.judge.parse')."""

    def __init__(self, src: Path):
        self.src = src
        self.files: dict[str, Path] = {}
        for path in sorted((src / PACKAGE).rglob("*.py")):
            parts = path.relative_to(src).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            self.files[name] = path

    def imports(self, path: Path, module: str = "") -> set[str]:
        """The project modules that the file at `path` (module `module`, '' for a script) imports by name."""
        is_package = path.name == "__init__.py"
        out: set[str] = set()
        for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                out.update(a.name for a in node.names if a.name.split(".")[0] == PACKAGE)
                continue
            base = node.module or ""
            if node.level:  # relative: from its own package upwards
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            if base.split(".")[0] != PACKAGE:
                continue
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in self.files)
        return {m for m in out if m in self.files}

    def edges(self) -> dict[str, set[str]]:
        """module -> the project modules it imports (explicit imports only, no parent-package edges)."""
        return {name: self.imports(path, name) - {name} for name, path in self.files.items()}

    def closure(self, script: Path) -> set[Path]:
        """Every project file that running `script` may execute or read: modules, parent __init__s, data folders."""
        todo, seen = list(self.imports(script)), set()
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            parts = name.split(".")
            todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # parent packages run first
            todo += list(self.imports(self.files[name], name))
        files = {self.files[name] for name in seen}
        for name in seen:
            if self.files[name].name == "__init__.py":
                files |= _data_files(self.files[name].parent)
        return files

    def cycles(self) -> list[list[str]]:
        """Strongly connected groups of two or more modules (Tarjan), each sorted; [] when the graph is a DAG."""
        edges, index, low, stack, on, out = self.edges(), {}, {}, [], set(), []

        def visit(v: str) -> None:
            index[v] = low[v] = len(index)
            stack.append(v)
            on.add(v)
            for w in edges[v]:
                if w not in index:
                    visit(w)
                    low[v] = min(low[v], low[w])
                elif w in on:
                    low[v] = min(low[v], index[w])
            if low[v] == index[v]:
                group = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    group.append(w)
                    if w == v:
                        break
                if len(group) > 1:
                    out.append(sorted(group))

        for v in sorted(edges):
            if v not in index:
                visit(v)
        return sorted(out)


def _data_files(package_dir: Path) -> set[Path]:
    """Files in the package's sub-folders that hold no Python module (prompt texts, templates, static assets)."""
    out = set()
    for sub in package_dir.iterdir():
        if sub.is_dir() and sub.name != "__pycache__" and not any(sub.rglob("*.py")):
            out |= {p for p in sub.rglob("*") if p.is_file()}
    return out


def exact_deps(files: set[Path], repo: Path) -> list[str]:
    """The shortest dvc.yaml dep list that covers `files` exactly: a folder where every file in it is covered, else
    the files one by one (relative to `repo`, sorted).
    """
    covered = {p.relative_to(repo) for p in files}
    out: list[str] = []

    def walk(folder: Path) -> None:
        inside = {
            p.relative_to(repo) for p in (repo / folder).rglob("*") if p.is_file() and "__pycache__" not in p.parts
        }
        if inside and inside <= covered:
            out.append(str(folder))
            return
        for child in sorted((repo / folder).iterdir()):
            rel = child.relative_to(repo)
            if child.is_dir() and child.name != "__pycache__":
                walk(rel)
            elif child.is_file() and rel in covered:
                out.append(str(rel))

    walk(Path("src") / PACKAGE)
    return sorted(out)
