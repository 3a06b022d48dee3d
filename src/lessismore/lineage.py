"""Where every output came from: dvc.lock (hashes of each stage's deps, outs and params) plus the git commit.

Read by the report stage, so each number on reports/index.html traces back to the exact data, checkpoint, params
and code that made it, and by `lessismore lineage TARGET`: `resolve_target` + `trace` + `sources` walk from one
output or metric key back through the stages that made its deps down to the source files (data/sources, code).
All of that is pure over the parsed lock file; only `read_lock`, `git_commit` and `lineage_of` (the command's data:
it also reads the metric's current value) touch the disk or run git. explain.py prints it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

# What the report names, in its order: (label, stage, path) as written in dvc.yaml.
ARTIFACTS = (
    ("curated data", "curate", "data/curated"),
    ("base model", "model", "models/base"),
    ("checkpoint", "train", "models/final"),
    ("responses", "generate", "outputs/responses"),
    ("judgments", "judge", "outputs/judgments.jsonl"),
    ("ratings", "judge", "outputs/ratings.jsonl"),
)


def read_lock(path: str | Path) -> dict[str, Any]:
    """dvc.lock as a dict; {} when there is none yet (a stage run by hand, outside `dvc repro`)."""
    import yaml

    path = Path(path)
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a dvc.lock mapping; delete it and run `dvc repro` to rewrite it")
    return data


def _entries(items: list[dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """dvc.lock's list of {path, md5, size, nfiles} -> {path: {md5, size, nfiles}}."""
    out = {}
    for item in items or []:
        digest = item.get("md5") or item.get("etag") or item.get("checksum") or ""
        out[item["path"]] = {"md5": digest, "size": item.get("size"), "nfiles": item.get("nfiles")}
    return out


def _flat_params(params: dict[str, Any] | None) -> dict[str, Any]:
    """{params.yaml: {curate: {budget: 96}, base.seed: 1}} -> {"curate.budget": 96, "base.seed": 1} (dotted keys)."""

    def walk(prefix: str, value: Any) -> dict[str, Any]:
        if isinstance(value, dict) and value:
            return {
                k: v for key, sub in value.items() for k, v in walk(f"{prefix}.{key}" if prefix else key, sub).items()
            }
        return {prefix: value}

    return {k: v for values in (params or {}).values() for k, v in walk("", values or {}).items()}


def stage_lineage(lock: str | Path | dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per stage: cmd, deps and outs ({path: {md5, size, nfiles}}) and params (dotted keys), from dvc.lock.

    >>> lock = {"stages": {"curate": {"cmd": "python stages/curate.py", "deps": [{"path": "d", "md5": "1.dir"}],
    ...          "params": {"params.yaml": {"base.seed": 1, "curate": {"budget": 96}}},
    ...          "outs": [{"path": "data/curated", "md5": "ab.dir", "size": 10, "nfiles": 1}]}}}
    >>> s = stage_lineage(lock)["curate"]
    >>> s["outs"]["data/curated"]["md5"], s["params"]
    ('ab.dir', {'base.seed': 1, 'curate.budget': 96})
    """
    data = lock if isinstance(lock, dict) else read_lock(lock)
    out = {}
    for name, stage in (data.get("stages") or {}).items():
        out[name] = {
            "cmd": stage.get("cmd", ""),
            "deps": _entries(stage.get("deps")),
            "outs": _entries(stage.get("outs")),
            "params": _flat_params(stage.get("params")),
        }
    return out


def git_commit(repo_dir: str | Path = ".") -> dict[str, Any]:
    """{"commit": HEAD's sha or None (not a repo, no commit yet, no git), "dirty": uncommitted changes?}."""

    def git(*args: str) -> subprocess.CompletedProcess | None:
        try:
            return subprocess.run(["git", *args], cwd=repo_dir, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None

    head = git("rev-parse", "--verify", "HEAD")
    if head is None or head.returncode != 0:
        status = git("status", "--porcelain")
        return {"commit": None, "dirty": bool(status and status.returncode == 0 and status.stdout.strip())}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": head.stdout.strip(), "dirty": bool(status and status.stdout.strip())}


def lineage_table(stages: dict[str, dict[str, Any]], git: dict[str, Any]) -> dict[str, Any]:
    """What the report shows: the key artifacts with their hashes, each stage's params, and the code's commit.

    >>> t = lineage_table({"train": {"outs": {"models/final": {"md5": "9f.dir"}}, "params": {"train.lr": 0.1}}},
    ...                   {"commit": None, "dirty": True})
    >>> [(a["what"], a["md5"]) for a in t["artifacts"] if a["md5"]], t["params"]
    ([('checkpoint', '9f.dir')], {'train': {'train.lr': 0.1}})
    """
    artifacts = []
    for what, stage, path in ARTIFACTS:
        entry = stages.get(stage, {}).get("outs", {}).get(path, {})
        artifacts.append(
            {
                "what": what,
                "stage": stage,
                "path": path,
                "md5": entry.get("md5", ""),
                "size": entry.get("size"),
                "nfiles": entry.get("nfiles"),
            }
        )
    params = {name: dict(s.get("params", {})) for name, s in stages.items() if s.get("params")}
    return {"artifacts": artifacts, "params": params, "git": dict(git), "stages": sorted(stages)}


# ----------------------------------------------------------------------------------------------------------------
# `lessismore lineage TARGET`: from one output or metric back through the stages to the source files


def producers(stages: dict[str, dict[str, Any]]) -> dict[str, str]:
    """{out path: the stage that writes it}, metrics and plots files included (dvc.lock lists them as outs)."""
    return {path: name for name, stage in stages.items() for path in stage.get("outs", {})}


def producer_of(path: str, made_by: dict[str, str]) -> tuple[str, str] | None:
    """(stage, out) for a path that is an out or lies inside an out directory; None for a source.

    >>> producer_of("models/final/adapter.safetensors", {"models/final": "train"}), producer_of("x", {})
    (('train', 'models/final'), None)
    """
    if path in made_by:
        return made_by[path], path
    return next(((made_by[out], out) for out in sorted(made_by) if path.startswith(out.rstrip("/") + "/")), None)


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
            found = producer_of(path, made_by)
            made = stages[found[0]]["outs"][found[1]] if found else {}
            stale = bool(found and found[1] == path and made.get("md5") != entry.get("md5"))
            deps.append(
                {"path": path, **entry, "kind": kind(path), "from": found[0] if found else None, "stale": stale}
            )
            if found and found[0] not in wanted:
                queue.append(found[0])
            if found:
                wanted.setdefault(found[0], []).append(found[1])
        chain_outs = {p: info.get("outs", {}).get(p, {}) for p in dict.fromkeys(wanted[name])}
        order.append({"stage": name, "cmd": info.get("cmd", ""), "params": info.get("params", {}), "outs": chain_outs,
                      "deps": deps})  # fmt: skip
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
    import json

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
