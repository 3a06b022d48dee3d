"""The pure parts of the Prefect flows (flows/*.py): retry policy, artifact rows, source-change and ablation helpers.

The flows stay thin leaves that run DVC and talk to Prefect; what they decide or show is computed here, over plain
dicts (params.yaml, metrics/*.json, `dvc status --json`, `dvc exp show --json`), with doctests.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lessismore.contract import group


def load_sibling(flow_file: str, name: str) -> Any:
    """Another flow file next to `flow_file` as a module, loaded by path (flows are leaves: never imported).

    Not prefect's load_script_as_module: `prefect deploy` holds its (non re-entrant) lock while it loads the
    calling flow file, so loading through it again from there deadlocks.
    """
    import importlib.util

    path = Path(flow_file).with_name(name)
    spec = importlib.util.spec_from_file_location(f"lessismore_flows_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------------------------------------------
# pipeline: which stages call outside services, the artifacts' rows

RETRIES = 2  # attempts after the first, only for stages that call a service outside this machine


def external_stages(params: dict[str, Any]) -> set[str]:
    """The stages that call a service outside this machine, from params.yaml (the raw mapping).

    >>> sorted(external_stages({"ingest": {"sources": [{"path": "s3://b/wp.csv"}]},
    ...                         "judge": {"judges": [{"backend": "local"}, {"backend": "openai"}]}}))
    ['ingest', 'judge']
    """
    out = set()
    if any(str(s.get("path", "")).startswith(("s3://", "hf://")) for s in params.get("ingest", {}).get("sources", [])):
        out.add("ingest")
    if params.get("generate", {}).get("backend") == "openai":
        out.add("generate")
    if any(j.get("backend") == "openai" for j in params.get("judge", {}).get("judges", [])):
        out.add("judge")
    train = params.get("train", {})
    if train.get("select") == "judge" and (train.get("select_judge") or {}).get("backend") == "openai":
        out.add("train")  # the epochs are judged by a served judge
    return out


def retry_policy(params: dict[str, Any], stages: Iterable[str]) -> dict[str, int]:
    """Retries per stage: RETRIES for the external ones (429s, timeouts pass), 0 for the rest (a bug repeats).

    >>> retry_policy({"generate": {"backend": "openai"}}, ["train", "generate@base"])
    {'train': 0, 'generate@base': 2}
    """
    external = external_stages(params)
    return {stage: RETRIES if group(stage) in external else 0 for stage in stages}


def awaiting_worker(state_type: str | None) -> bool:
    """Whether a flow run still waits for a worker to take it: scheduled (late ones too). A worker that takes a run
    moves it to PENDING, then RUNNING; those and every final state mean some worker has it.

    >>> [awaiting_worker(t) for t in ("SCHEDULED", "PENDING", "RUNNING", "COMPLETED", None)]
    [True, False, False, False, True]
    """
    return state_type in (None, "SCHEDULED")


def win_rows(judge: dict[str, Any]) -> list[dict[str, Any]]:
    """metrics/judge.json -> one row a baseline: the headline (primary judge) win / tie / loss with the win CI."""
    rows = []
    for baseline, m in judge.get("baselines", {}).items():
        rows.append(
            {
                "candidate": judge.get("candidate", ""),
                "baseline": baseline,
                "win": round(m["win"], 3),
                "tie": round(m["tie"], 3),
                "loss": round(m["loss"], 3),
                "win 95% CI": m.get("ci", {}).get("win"),
                "pairs": m.get("n", 0),
                "invalid": m.get("invalid", 0),
            }
        )
    return rows


def funnel_rows(curate: dict[str, Any]) -> list[dict[str, Any]]:
    """metrics/curate.json "funnel" -> one row a step: records left, dropped by the step, and per source.

    >>> funnel_rows({"funnel": [{"step": "validated", "n": 5, "per_source": {"se": 3, "wh": 2}},
    ...                         {"step": "selected", "n": 2, "per_source": {"se": 2}}]})[1]
    {'step': 'selected', 'n': 2, 'dropped': 3, 'se': 2, 'wh': 0}
    """
    funnel = curate.get("funnel", [])
    sources = sorted({name for step in funnel for name in step.get("per_source", {})})
    rows, previous = [], None
    for step in funnel:
        row = {"step": step["step"], "n": step["n"], "dropped": 0 if previous is None else previous - step["n"]}
        rows.append(row | {name: step.get("per_source", {}).get(name, 0) for name in sources})
        previous = step["n"]
    return rows


def lineage_markdown(table: dict[str, Any], max_chars: int = 120) -> str:
    """lessismore.lineage.lineage_table(...) -> markdown: key artifacts' md5, params per stage, the git commit."""
    git = table.get("git", {})
    dirty = " (uncommitted changes)" if git.get("dirty") else ""
    lines = [
        f"**git commit** `{git.get('commit') or 'none'}`{dirty}",
        "",
        "| artifact | path | stage | md5 (dvc.lock) | bytes |",
        "|---|---|---|---|---|",
    ]
    for a in table.get("artifacts", []):
        lines.append(f"| {a['what']} | `{a['path']}` | {a['stage']} | `{a['md5'] or '-'}` | {a.get('size') or '-'} |")
    lines += ["", "| stage | param | value |", "|---|---|---|"]
    for stage, params in table.get("params", {}).items():
        for key, value in params.items():
            text = json.dumps(value).replace("|", "\\|")
            text = text if len(text) <= max_chars else text[: max_chars - 1] + "… (whole in dvc.lock)"
            lines.append(f"| {stage} | `{key}` | `{text}` |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# retrain: did the sources change?


def is_code(path: str) -> bool:
    """A dep that is code (the stage script, the library), not data. Params are not deps here.

    >>> [is_code(p) for p in ("stages/ingest.py", "src/lessismore/sources", "data/sources", "s3://b/k.csv")]
    [True, True, False, False]
    """
    return path.endswith(".py") or path.split("/")[0] in ("stages", "src")


def changed_data(status: dict[str, Any], stage: str = "ingest") -> dict[str, str]:
    """`dvc status <stage> --json` -> {data dep: "modified" | "new" | "deleted"}; code and params are left out.

    >>> changed_data({"ingest": [{"changed deps": {"stages/ingest.py": "modified", "data/sources": "modified",
    ...                                            "params.yaml": {"ingest": "modified"}}}]})
    {'data/sources': 'modified'}
    """
    out = {}
    for entry in status.get(stage, []):
        if isinstance(entry, dict):
            for path, what in entry.get("changed deps", {}).items():
                if isinstance(what, str) and path != "params.yaml" and not is_code(path):
                    out[path] = what
    return out


# ---------------------------------------------------------------------------------------------------------------
# ablation: the quality-vs-N curve


def exp_revs(show: list[dict[str, Any]]) -> dict[str, str]:
    """`dvc exp show --json` -> {experiment name: its commit sha}.

    >>> exp = {"name": "abl-lima-8", "revs": [{"rev": "b2", "name": "abl-lima-8"}]}
    >>> exp_revs([{"rev": "a1", "experiments": [exp]}])
    {'abl-lima-8': 'b2'}
    """
    out = {}
    for baseline in show:
        for exp in baseline.get("experiments") or []:
            for rev in exp.get("revs") or []:
                if rev.get("name"):
                    out[rev["name"]] = rev["rev"]
    return out


def ablation_point(judge: dict[str, Any], **where: Any) -> dict[str, Any]:
    """metrics/judge.json -> one point of the curve (primary judge, first baseline); `where` names the point."""
    baseline, m = next(iter(judge["baselines"].items()))
    ci = m.get("ci", {})
    point = {
        "n": m["n"],
        "win": m["win"],
        "tie": m["tie"],
        "loss": m["loss"],
        "ci": {"win": ci.get("win"), "loss": ci.get("loss")},
    }
    return {**where, **point, "_baseline": baseline, "_judge": judge.get("primary")}


def curve(points: list[dict[str, Any]]) -> dict[str, Any]:
    """The metrics/ablation.json document (the report's contract) from the points, sorted by variant and N."""
    first = points[0] if points else {}
    clean = [{k: v for k, v in p.items() if not k.startswith("_")} for p in points]
    return {
        "baseline": first.get("_baseline"),
        "judge": first.get("_judge"),
        "metric": "win",
        "points": sorted(clean, key=lambda p: (p["variant"], p["budget"])),
    }
