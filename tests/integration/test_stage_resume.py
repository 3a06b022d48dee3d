"""`python stages/ingest.py` and `stages/validate.py` killed with SIGKILL after their first checkpoint, then run
again: the re-run resumes (it says so, and metrics/timing/<stage>.json counts the shards it kept) and leaves the
same bytes as an uninterrupted run in a twin project. A changed input or param starts afresh instead."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from lessismore.config import read_yaml
from lessismore.contract import DATA_DOCS, INGESTED, PARTIAL, VALIDATED, metrics, quarantine, timing
from tests.conftest import REPO, run_env

pytestmark = pytest.mark.slow
SHARD_ROWS = 20
OUTPUTS = {
    "ingest": (INGESTED, quarantine("ingest"), metrics("ingest")),
    "validate": (VALIDATED, quarantine("validate"), metrics("validate")),
}


def _lima(n: int) -> str:
    """`n` lines of GAIR/lima JSONL: some broken (ingest drops them), some with HTML in the answer or a copy of an
    earlier row (validate drops them), spread over the whole file so every shard has its share."""
    lines = []
    for i in range(n):
        answer = f"Answer {i}: boil the water, then steep the tea for three minutes."
        if i % 17 == 5:
            answer = f"<div>Answer {i}</div> left by a scrape"
        row = {"conversations": [f"Question {i}: how do I brew tea?", answer]}
        if i % 29 == 7 and i > 100:
            row = {"conversations": [f"Question {i - 100}: how do I brew tea?", f"Answer {i - 100}: boil"]}
        lines.append('{"conversations": ["broken' if i % 50 == 3 else json.dumps(row))
    return "\n".join(lines) + "\n"


def _project(root: Path, rows: int) -> Path:
    root.mkdir(parents=True)
    (root / "a.jsonl").write_text(_lima(30))
    (root / "b.jsonl").write_text(_lima(rows))
    (root / "test.jsonl").write_text('{"prompt": "Why is the sky blue?"}\n{"prompt": "How do tides work?"}\n')
    (root / "dev.jsonl").write_text('{"prompt": "Name three rivers."}\n')
    spec = [("a", "lima_jsonl", "train"), ("test", "prompts_jsonl", "test"), ("dev", "prompts_jsonl", "dev")]
    sources = [
        {"name": n, "format": f, "path": f"{n}.jsonl", "split": s, "license": "test"}
        | ({"quota": 0, "curated": False} if s == "train" else {})
        for n, f, s in [*spec, ("b", "lima_jsonl", "train")]
    ]
    params = read_yaml(REPO / "params.yaml")
    params["ingest"] = {"sources": sources}
    params["data"]["shard_rows"] = SHARD_ROWS
    params["data"]["workers"] = 2  # worker processes on any machine: a killed stage's must not outlive it
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return root


def _run(root: Path, stage: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(REPO / "stages" / f"{stage}.py")]
    proc = subprocess.run(cmd, cwd=root, env=run_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    proc.stderr = " ".join(proc.stderr.split())  # as said, not as rich wrapped it to the terminal's width
    return proc


def _kill_after_first_checkpoint(root: Path, stage: str) -> None:
    state = root / PARTIAL / stage / "state.json"
    with (root / f"{stage}.log").open("w") as log:
        cmd = [sys.executable, str(REPO / "stages" / f"{stage}.py")]
        proc = subprocess.Popen(cmd, cwd=root, env=run_env(), stdout=log, stderr=log)
        while proc.poll() is None and not state.exists():
            time.sleep(0.002)
        workers = _children(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, (
        f"{stage} ended before it was killed: {(root / f'{stage}.log').read_text()}"
    )
    assert workers, f"{stage} ran no worker process (data.workers 2)"
    deadline = time.monotonic() + 15
    while (alive := [pid for pid in workers if Path(f"/proc/{pid}").exists()]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive, f"{stage}'s worker processes {alive} outlived it (orphans hold memory for good)"


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc: this runs on Linux)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _outputs(root: Path, stage: str) -> dict[str, bytes]:
    files = [
        f for path in OUTPUTS[stage] for f in ([root / path] if path.suffix else sorted((root / path).rglob("*")))
    ]
    return {str(f.relative_to(root)): f.read_bytes() for f in files if f.is_file()}


# what differs between two uninterrupted runs' Data Docs (contract.VOLATILE): run times (as names, dates and the
# index's sort key), and the uuid4 GX gives each collapsible block when it renders a page
_VOLATILE = re.compile(
    "|".join(
        [
            r"\d{8}T\d{6}\.\d{6}Z",
            r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(\+00:00|Z)?",
            r"(?<='_run_time_sort': )[\d.]+",
            r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}",
        ]
    )
)


def _docs(root: Path) -> dict[str, str]:
    """The Data Docs pages, their volatile parts blanked: one page a batch, the killed run's batches too. The index
    lists the runs by the time they started, and two worker processes (data.workers) start neighbouring shards in
    either order: its rows are compared as a set, each row whole, apart from the page around them (the oldest run
    comes last, next to the page's tail: shard 1 when it started first)."""
    pages = sorted((root / DATA_DOCS).rglob("*.html"))
    out = {_VOLATILE.sub("~", str(p.relative_to(root))): _VOLATILE.sub("~", p.read_text()) for p in pages}
    index = str((root / DATA_DOCS / "index.html").relative_to(root))
    head, *rows = out[index].split("{'validation_success': ")
    ends = [_ROW_END.match(row) for row in rows]  # each row: its dict, then what follows it (", " or the tail)
    assert all(ends), "a row of the Data Docs index does not end where _ROW_END expects"
    tail = ends[-1].group(2) if ends else ""
    out[index] = head + "".join(sorted(m.group(1) for m in ends)) + tail
    return out


_ROW_END = re.compile(r"(.*?'asset_name': '[^']*'\})(.*)", re.DOTALL)  # an index row's dict ends with its asset


def _resumed(root: Path, stage: str) -> int:
    return json.loads((root / timing(stage)).read_text())["resumed"]["shards"]


def test_killed_ingest_resumes_and_writes_the_same_bytes(tmp_path):
    clean, killed = _project(tmp_path / "clean", 20_000), _project(tmp_path / "killed", 20_000)
    _run(clean, "ingest")
    assert _resumed(clean, "ingest") == 0

    _kill_after_first_checkpoint(killed, "ingest")
    assert not (killed / metrics("ingest")).exists() and not (killed / INGESTED).exists()
    proc = _run(killed, "ingest")
    assert "ingest: resumed from shard" in proc.stderr and _resumed(killed, "ingest") >= 1
    timed = json.loads((killed / timing("ingest")).read_text())["resumed"]
    assert timed["reparsed"]["records"] > 0  # the source it was in is read again up to its checkpoint
    assert _outputs(killed, "ingest") == _outputs(clean, "ingest")
    assert len(list((killed / INGESTED / "examples").iterdir())) > 900
    assert not (killed / PARTIAL.parent).exists()  # the work folder goes when the stage is done

    _kill_after_first_checkpoint(killed, "ingest")  # then an input changes: the checkpoint is another run's
    with (killed / "b.jsonl").open("a") as fh:
        fh.write(json.dumps({"conversations": ["One more?", "Yes."]}) + "\n")
    proc = _run(killed, "ingest")
    assert "resumed" not in proc.stderr and _resumed(killed, "ingest") == 0
    assert "ingest: starting afresh: the work a killed run left in .lessismore/partial/ingest was for" in proc.stderr
    counts = json.loads((killed / metrics("ingest")).read_text())["counts"]
    assert counts["examples"] == json.loads((clean / metrics("ingest")).read_text())["counts"]["examples"] + 1


def test_killed_validate_resumes_and_writes_the_same_bytes(tmp_path):
    clean, killed = _project(tmp_path / "clean", 450), _project(tmp_path / "killed", 450)
    for root in (clean, killed):
        _run(root, "ingest")
    _run(clean, "validate")
    validated = json.loads((clean / metrics("validate")).read_text())
    assert validated["dropped_by_reason"]["duplicate_id"] > 0 and validated["batches"]["examples"] > 20

    _kill_after_first_checkpoint(killed, "validate")
    assert not (killed / metrics("validate")).exists() and not (killed / VALIDATED).exists()
    proc = _run(killed, "validate")
    shards = _resumed(killed, "validate")
    assert f"validate: resumed from shard {shards} of {validated['batches']['examples']}" in proc.stderr
    assert shards >= 1
    assert _outputs(killed, "validate") == _outputs(clean, "validate")
    assert _docs(killed) == _docs(clean)
    assert not (killed / PARTIAL.parent).exists()

    _kill_after_first_checkpoint(killed, "validate")  # then a param changes: start afresh
    params = read_yaml(killed / "params.yaml")
    params["validate"]["max_chars"] -= 1
    (killed / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    proc = _run(killed, "validate")
    assert "resumed" not in proc.stderr and _resumed(killed, "validate") == 0
    assert "validate: starting afresh" in proc.stderr
    assert _outputs(killed, "validate") == _outputs(clean, "validate")  # max_chars - 1 changes no row here
