"""`lessismore lineage TARGET`: from one output or metric key back through the stages to the source files.

Over lineage.stage_lineage (the parsed dvc.lock): `resolve_target` names what is asked about, `trace` walks from the
stage that made it through the stages that made its deps, `sources` lists the leaves (data/sources, params, code).
All pure; `lineage_of` adds what needs the disk (the metric's current value, whether the file still matches
dvc.lock, the git commit) and `render_lineage` draws the result as a rich tree.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lessismore.lineage import git_commit, stage_lineage


def producers(stages: dict[str, dict[str, Any]]) -> dict[str, str]:
    """{out path: the stage that writes it}, metrics and plots files included (dvc.lock lists them as outs)."""
    return {path: name for name, stage in stages.items() for path in stage.get("outs", {})}


def producer_of(path: str, made_by: dict[str, str]) -> tuple[str, str] | None:
    """(stage, out) for a path that is an out or lies inside an out directory; None for a source.

    >>> producer_of("models/finetuned/adapter.safetensors", {"models/finetuned": "train"}), producer_of("x", {})
    (('train', 'models/finetuned'), None)
    """
    if path in made_by:
        return made_by[path], path
    return next(((made_by[out], out) for out in sorted(made_by) if path.startswith(out.rstrip("/") + "/")), None)


def producers_of(path: str, made_by: dict[str, str]) -> list[tuple[str, str]]:
    """Every (stage, out) a dep path reads: the out it is or lies in, or each out inside it (a folder that several
    stages write into, such as outputs/responses with generate@<model>'s and import@<name>'s files); [] for a source.

    >>> made = {"outputs/responses/base.jsonl": "generate@base", "outputs/responses/gpt4.jsonl": "import@gpt4"}
    >>> producers_of("outputs/responses", made)
    [('generate@base', 'outputs/responses/base.jsonl'), ('import@gpt4', 'outputs/responses/gpt4.jsonl')]
    """
    found = producer_of(path, made_by)
    if found:
        return [found]
    return [(made_by[out], out) for out in sorted(made_by) if out.startswith(path.rstrip("/") + "/")]


def resolve_target(stages: dict[str, dict[str, Any]], target: str) -> dict[str, Any]:
    """TARGET -> {"path", "key", "stage"}: an out or source path, `metrics file:dotted.key`, or a stage name.

    >>> st = {"curate": {"outs": {"metrics/curate.json": {}}, "deps": {"data/validated": {}}}}
    >>> resolve_target(st, "metrics/curate.json:counts.selected")
    {'path': 'metrics/curate.json', 'key': 'counts.selected', 'stage': 'curate'}
    >>> resolve_target(st, "data/validated")["stage"] is None
    True
    """
    made_by = producers(stages)
    paths = set(made_by) | {p for s in stages.values() for p in s.get("deps", {})}
    if target in stages and target not in paths:
        return {"path": None, "key": None, "stage": target}
    path, key = target, None
    if target not in paths:
        path, key = next(((p, target[len(p) + 1 :]) for p in paths if target.startswith(p + ":")), (target, None))
    found = producer_of(path, made_by)
    if found is None and path not in paths:
        raise LookupError(unknown_target(target, stages))
    return {"path": path, "key": key or None, "stage": found[0] if found else None}


def unknown_target(target: str, stages: dict[str, dict[str, Any]]) -> str:
    """The error for a TARGET dvc.lock does not know: close matches first, then everything it could be."""
    import difflib

    outs = sorted(producers(stages))
    close = difflib.get_close_matches(target, outs + sorted(stages), n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    metrics = [o for o in outs if o.endswith(".json")]
    return (
        f"{target!r} is not an output, metric or stage in dvc.lock; {hint}\n  outputs: {', '.join(outs)}\n"
        f"  metrics (add :dotted.key for one number): {', '.join(metrics)}\n  stages: {', '.join(stages)}"
    )


def lookup(data: Any, key: str) -> Any:
    """The value at a dotted key; a name may itself hold dots (the longest match wins); digits index lists.

    >>> m = {"baselines": {"gpt-3.5": {"win": 0.25}}, "xs": [1, 2]}
    >>> lookup(m, "baselines.gpt-3.5.win"), lookup(m, "xs.1")
    (0.25, 2)
    """
    parts, node, done = key.split("."), data, []
    while parts:
        for n in range(len(parts), 0, -1):
            name = ".".join(parts[:n])
            if isinstance(node, dict) and name in node:
                node, parts, done = node[name], parts[n:], [*done, name]
                break
            if isinstance(node, list) and name.isdigit() and int(name) < len(node):
                node, parts, done = node[int(name)], parts[n:], [*done, name]
                break
        else:
            has = sorted(node) if isinstance(node, dict) else f"{len(node)} items" if isinstance(node, list) else node
            raise LookupError(f"no key {parts[0]!r} under {'.'.join(done) or 'the top level'}; there: {has}")
    return node


def trace(stages: dict[str, dict[str, Any]], stage: str, outs: list[str]) -> list[dict[str, Any]]:
    """The stages behind `outs` of `stage`, nearest first: each with cmd, params, the outs on the chain, and its
    deps, each dep with the stage that makes it ("from", None for a source), its kind and whether the hash the
    stage ran on still equals its producer's ("stale": `dvc repro` would re-run the stage).

    >>> st = {"a": {"cmd": "A", "deps": {"src.txt": {"md5": "1"}}, "outs": {"mid": {"md5": "2"}}, "params": {}},
    ...       "b": {"cmd": "B", "deps": {"mid": {"md5": "2"}}, "outs": {"out": {"md5": "3"}}, "params": {"k": 1}}}
    >>> [(n["stage"], [(d["path"], d["from"]) for d in n["deps"]]) for n in trace(st, "b", ["out"])]
    [('b', [('mid', 'a')]), ('a', [('src.txt', None)])]
    """
    made_by, order, wanted, queue = producers(stages), [], {stage: list(outs)}, [stage]
    while queue:
        name = queue.pop(0)
        info = stages[name]
        deps = []
        for path, entry in sorted(info.get("deps", {}).items()):
            found = producers_of(path, made_by)
            made = stages[found[0][0]]["outs"][found[0][1]] if len(found) == 1 else {}
            stale = bool(made and found[0][1] == path and made.get("md5") != entry.get("md5"))
            makers = list(dict.fromkeys(stage for stage, _ in found))
            deps.append(
                {"path": path, **entry, "kind": kind(path), "from": ", ".join(makers) or None, "stale": stale}
                | {"makers": makers}
            )
            for maker, out in found:
                if maker not in wanted:
                    queue.append(maker)
                wanted.setdefault(maker, []).append(out)
        chain_outs = {p: info.get("outs", {}).get(p, {}) for p in dict.fromkeys(wanted[name])}
        order.append(
            {
                "stage": name,
                "cmd": info.get("cmd", ""),
                "params": info.get("params", {}),
                "outs": chain_outs,
                "deps": deps,
            }
        )
    return order


def kind(path: str) -> str:
    """What a dep is: code (scripts, the library) or data.

    >>> kind("stages/train.py"), kind("src/lessismore/curate"), kind("data/sources")
    ('code', 'code', 'data')
    """
    return "code" if path.endswith(".py") or path.startswith(("src/", "stages/", "flows/")) else "data"


def sources(chain: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The leaves of a chain: deps no stage makes (data/sources, code), once each, with the stages that read them."""
    out: dict[str, dict[str, Any]] = {}
    for node in chain:
        for dep in node["deps"]:
            if dep["from"] is None:
                out.setdefault(dep["path"], {**dep, "used_by": []})["used_by"].append(node["stage"])
    return sorted(out.values(), key=lambda d: (d["kind"] != "data", d["path"]))


def lineage_of(root: str | Path, target: str) -> dict[str, Any]:
    """`lessismore lineage TARGET` as data: the target, the chain of stages, the sources, git, and for a metric key
    its value now and whether the metrics file on disk is still the one dvc.lock recorded. LookupError if unknown."""
    import hashlib

    root = Path(root)
    stages = stage_lineage(root / "dvc.lock")
    if not stages:
        raise LookupError(f"no dvc.lock in {root.resolve()}: run the pipeline first (`dvc repro`)")
    found = resolve_target(stages, target)
    path, stage, out = found["path"], found["stage"], {"target": target, **found}
    if stage:
        outs = [producer_of(path, producers(stages))[1]] if path else list(stages[stage].get("outs", {}))
        out |= {"chain": (chain := trace(stages, stage, outs)), "sources": sources(chain)}
    else:  # a source file or directory: no stage makes it
        readers = [name for name, s in stages.items() if path in s.get("deps", {})]
        out |= {"chain": [], "sources": [{"path": path, **_dep(stages, path), "kind": kind(path), "used_by": readers}]}
    recorded = (stages[stage]["outs"].get(path, {}) if stage else _dep(stages, path)).get("md5") if path else None
    if recorded and not recorded.endswith(".dir") and (root / path).is_file():  # a file: cheap to check
        with (root / path).open("rb") as fh:
            out["on_disk"] = "as in dvc.lock" if hashlib.file_digest(fh, "md5").hexdigest() == recorded else "changed"
    if found["key"]:
        if not (root / path).is_file():
            raise LookupError(f"{path} is not on disk to read {found['key']!r}: `dvc checkout {path}` or `dvc repro`")
        try:
            out["value"] = lookup(json.loads((root / path).read_text(encoding="utf-8")), found["key"])
        except LookupError as err:
            raise LookupError(f"{path}: {err}") from None
    return out | {"git": git_commit(root)}


def _dep(stages: dict[str, dict[str, Any]], path: str) -> dict[str, Any]:
    return next((s["deps"][path] for s in stages.values() if path in s.get("deps", {})), {})


# ----------------------------------------------------------------------------------------------------------------
# printing (rich, imported only here)


def _size(entry: dict[str, Any]) -> str:
    """ "12.3 kB, 4 files" from a dvc.lock entry's size (bytes) and nfiles.

    >>> _size({"size": 12345, "nfiles": 4}), _size({})
    ('12.3 kB, 4 files', '')
    """
    size, parts = entry.get("size"), []
    if size is not None:
        unit, factor = next(
            (u, f) for u, f in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3), ("B", 1)) if size >= f or f == 1
        )
        parts.append(f"{size / factor:.3g} {unit}")
    n = entry.get("nfiles")
    parts += [f"{n} file{'s' * (n != 1)}"] if n is not None else []
    return ", ".join(parts)


def render_lineage(result: dict[str, Any]) -> Any:
    """A rich Tree of a `lessismore lineage` result: the target, then each stage with its cmd, params and deps,
    each produced dep followed by the stage that made it (once: later mentions point up), down to the sources."""
    from rich.markup import escape
    from rich.tree import Tree

    chain = {node["stage"]: node for node in result["chain"]}
    label = f"[bold]{escape(result['target'])}[/]"
    if result.get("key"):
        label += f" = [bold green]{escape(json.dumps(result.get('value')))}[/]"
    if result.get("on_disk") == "changed":
        label += "  [red](the file on disk differs from dvc.lock: `dvc status`, `dvc repro`)[/]"
    tree, shown = Tree(label), set()

    def add_stage(parent: Any, name: str) -> None:
        node = chain[name]
        if name in shown:
            parent.add(f"[bold]{name}[/] [dim](shown above)[/]")
            return
        shown.add(name)
        branch = parent.add(f"[bold cyan]stage {name}[/]  [dim]{escape(node['cmd'])}[/]")
        for path, entry in node["outs"].items():
            branch.add(f"writes {escape(path)}  md5 {entry.get('md5', '?')}  [dim]{_size(entry)}[/]")
        if node["params"]:
            params = branch.add("params (params.yaml)")
            for key, value in node["params"].items():
                text = json.dumps(value, ensure_ascii=False)
                params.add(f"{escape(key)} = {escape(text if len(text) <= 100 else text[:97] + '...')}")
        for dep in node["deps"]:
            text = f"{escape(dep['path'])}  md5 {dep.get('md5', '?')}  [dim]{_size(dep)}  {dep['kind']}[/]"
            if dep["stale"]:
                text += "  [red](changed since this stage ran)[/]"
            if dep["from"]:
                sub = branch.add(text + f"  <- {dep['from']}")
                for maker in dep["makers"]:
                    add_stage(sub, maker)
            else:
                branch.add(text + "  [green](source)[/]")

    if result["chain"]:
        add_stage(tree, result["chain"][0]["stage"])
    for src in result["sources"] if not result["chain"] else ():
        tree.add(f"a source: no stage makes it; md5 {src.get('md5', '?')}, read by {', '.join(src['used_by'])}")
    git = result.get("git") or {}
    tree.add(
        f"git commit {git.get('commit') or '(none)'}" + (" [red]+ uncommitted changes[/]" if git.get("dirty") else "")
    )
    return tree
