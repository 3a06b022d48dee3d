"""Where every output came from: dvc.lock (hashes of each stage's deps, outs and params) plus the git commit.

Read by the report stage and the Prefect flow, so each number on reports/index.html traces back to the exact data,
checkpoint, params and code that made it; trace.py builds `lessismore lineage TARGET` on it. `stage_lineage` and
`lineage_table` are pure over the parsed lock file; only `read_lock` and `git_commit` touch the disk or run git.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from lessismore import contract as c

# What the report names, in its order: (label, stage, path) as written in dvc.yaml; the stage whose dvc.lock entry
# records the path's hash: as an out, or as a dep (the answers, one file per generate@ / import@ stage, are hashed
# as one folder where the judge reads them).
ARTIFACTS = tuple(
    (label, stage, str(path))
    for label, stage, path in (
        ("curated data", "curate", c.CURATED),
        ("base model", "model", c.BASE_MODEL),
        ("checkpoint", "train", c.FINAL_MODEL),
        ("responses", "judge", c.RESPONSES),
        ("judgments", "judge", c.JUDGMENTS),
        ("ratings", "judge", c.RATINGS),
    )
)


BOOKKEEPING = ("dvc.lock", "metrics", "logs")  # git-tracked files the pipeline rewrites on every run


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
    """{"commit": HEAD's sha or None (not a repo, no commit yet, no git), "dirty": uncommitted changes?}.

    "dirty" leaves out what the pipeline itself writes into git-tracked files (BOOKKEEPING: dvc.lock, metrics/,
    logs/): after any `dvc repro` they differ from the commit by design, and their content is what lineage shows.
    """

    def git(*args: str) -> subprocess.CompletedProcess | None:
        try:
            return subprocess.run(["git", *args], cwd=repo_dir, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None

    head = git("rev-parse", "--verify", "HEAD")
    if head is None or head.returncode != 0:
        status = git("status", "--porcelain")
        return {"commit": None, "dirty": bool(status and status.returncode == 0 and status.stdout.strip())}
    status = git("status", "--porcelain", "--untracked-files=no", "--", ".", *(f":(exclude){p}" for p in BOOKKEEPING))
    return {"commit": head.stdout.strip(), "dirty": bool(status and status.stdout.strip())}


def lineage_table(stages: dict[str, dict[str, Any]], git: dict[str, Any]) -> dict[str, Any]:
    """What the report shows: the key artifacts with their hashes, each stage's params, and the code's commit.

    >>> t = lineage_table({"train": {"outs": {"models/finetuned": {"md5": "9f.dir"}}, "params": {"train.lr": 0.1}}},
    ...                   {"commit": None, "dirty": True})
    >>> [(a["what"], a["md5"]) for a in t["artifacts"] if a["md5"]], t["params"]
    ([('checkpoint', '9f.dir')], {'train': {'train.lr': 0.1}})
    """
    artifacts = []
    for what, stage, path in ARTIFACTS:
        entry = stages.get(stage, {}).get("outs", {}).get(path) or stages.get(stage, {}).get("deps", {}).get(path, {})
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
