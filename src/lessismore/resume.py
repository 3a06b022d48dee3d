"""Resumable data stages: a killed ingest or validate starts again after the last shard it finished.

Sits beside records.py; stages/ingest.py and stages/validate.py use it. DVC deletes a stage's outs before it runs
the stage, so work in progress cannot live in them: a `Work` folder (contract.PARTIAL/<stage>/, git-ignored) holds
the stage's outputs while they are written and a checkpoint (state.json) saved after every finished shard. A re-run
with the same `fingerprint` (the stage's params, its inputs' sizes and mtimes, the code and the libraries that write
the bytes) carries on from that checkpoint; any other fingerprint removes the stale work and starts afresh. `finish`
moves the outputs into place and removes the folder, so a resumed run leaves the same bytes as an uninterrupted one.
A kill -9 loses nothing flushed: the OS holds it (a power cut is another matter, and nothing here fsyncs).
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass, is_dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from lessismore import storage
from lessismore.contract import PARTIAL, SHARD
from lessismore.records import content_id

STATE = "state.json"
STALE = "starting afresh: the work a killed run left in {} was for other params, inputs or code"
LIBRARIES = ("pyarrow", "pandas", "great_expectations")  # they write the bytes of the shards and the Data Docs
PACKAGE = Path(__file__).resolve().parent  # the lessismore package: any change to its code starts afresh


def fingerprint(params: Any, inputs: Iterable[str | Path], code: Iterable[str | Path]) -> str:
    """A 16-hex-digit hash of what determines a stage's outputs: `params` (plain data or dataclasses), the identity
    of every input (see `identity`), the bytes of `code` (the stage script) and of the whole lessismore package
    (coarser than the stage's import closure, never wrong), and python's and LIBRARIES' versions."""
    files = {Path(p).name: Path(p) for p in code} | {
        str(p.relative_to(PACKAGE.parent)): p for p in PACKAGE.rglob("*") if _is_code(p)
    }
    digest = hashlib.sha256()
    for name in sorted(files):  # names, not absolute paths: a clone elsewhere resumes the same work
        digest.update(f"{name}\0".encode() + files[name].read_bytes())
    versions = {name: _version(name) for name in LIBRARIES} | {"python": sys.version.split()[0]}
    return content_id(_plain(params), [identity(str(p)) for p in inputs], digest.hexdigest(), versions)


def identity(path: str) -> list[list[Any]]:
    """[file, size, mtime] of every file a params path names (a file, a folder's files, a glob's matches): stat
    only, nothing is read. An s3:// object gives its size and ETag; an hf:// dataset its id (the offline cache
    holds one revision).

    >>> identity("hf://owner/name")
    [['hf://owner/name']]
    """
    if path.startswith("hf://"):
        return [[path]]
    if storage.is_remote(path):
        fs = storage.filesystem(path)
        infos = [fs.info(f) for f in storage.expand(path, "input", path)]
        return [[i["name"], i.get("size"), str(i.get("ETag", i.get("LastModified", "")))] for i in infos]
    matches = sorted(glob.glob(path)) if storage.has_glob(path) else [path]
    files = [f for m in map(Path, matches) for f in (sorted(m.rglob("*")) if m.is_dir() else [m]) if f.is_file()]
    return [[str(f), (st := f.stat()).st_size, st.st_mtime_ns] for f in files]


def _is_code(path: Path) -> bool:
    return path.is_file() and "__pycache__" not in path.parts


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return ""


def _plain(value: Any) -> Any:
    """Params as JSON data: dataclasses as dicts, tuples as lists."""
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return [_plain(v) for v in value] if isinstance(value, list | tuple) else value


@dataclass(frozen=True)
class Work:
    """One stage's work in progress for one fingerprint: staged outputs (`path`) and the checkpoint (`state`,
    None on a fresh start) that `save` writes after every finished shard."""

    folder: Path
    fingerprint: str
    state: dict[str, Any] | None
    discarded: bool = False  # a killed run's work was there, for other params, inputs or code (or damaged): removed

    @classmethod
    def open(cls, stage: str, fingerprint: str) -> Work:
        """The stage's work folder: its checkpoint when the fingerprint is the same and every file it names is
        still there, else an emptied folder (another run's work is stale: its params, inputs or code differ)."""
        folder = PARTIAL / stage
        state = _load(folder / STATE)
        stale = state is not None and (state.get("fingerprint") != fingerprint or not _intact(folder, state))
        if state is None or stale:
            shutil.rmtree(folder, ignore_errors=True)
            state = None
        folder.mkdir(parents=True, exist_ok=True)
        return cls(folder, fingerprint, state, stale)

    @property
    def shards(self) -> int:
        """Input shards (validate) or output shards (ingest) the checkpoint had finished: 0 on a fresh start."""
        return int(self.state["shards"]) if self.state else 0

    def path(self, name: str) -> Path:
        return self.folder / name

    def save(self, state: dict[str, Any], files: Iterable[str], shards: dict[str, int]) -> None:
        """Checkpoint `state` (JSON), with the size of each staged file it relies on (`files`, names in the folder)
        and the count of finished shards in each staged shard folder (`shards`: counted, not listed, so a save costs
        the same at the thousandth shard as at the first). Written to a temp file and renamed over the last one, so
        a kill leaves the old checkpoint or the new one, never half of one."""
        sizes = {name: self.path(name).stat().st_size for name in files}
        tmp = self.path(STATE + ".tmp")
        saved = state | {"fingerprint": self.fingerprint, "files": sizes, "sharded": shards}
        tmp.write_text(json.dumps(saved), encoding="utf-8")
        os.replace(tmp, self.path(STATE))

    def finish(self, moves: dict[str, Path]) -> None:
        """Move each staged output (name in the folder -> its place in the pipeline, replaced whole), then remove the
        work folder: the stage is done, nothing is left to resume."""
        for name, dest in moves.items():
            if dest.is_dir():
                shutil.rmtree(dest)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(self.path(name), dest)  # a rename on one filesystem
        shutil.rmtree(self.folder)
        for parent in (self.folder.parent, self.folder.parent.parent):  # PARTIAL and .lessismore, when empty
            if parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()


def _load(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # none yet (killed before the first shard), or not ours
        return None


def _intact(folder: Path, state: dict[str, Any]) -> bool:
    """Every staged file the checkpoint relies on is there, at least as long as it was (appends may follow), and so
    is every shard it had finished."""
    sizes = state["files"] | {
        f"{name}/{SHARD.format(i)}": 0 for name, count in state["sharded"].items() for i in range(count)
    }
    return all((folder / name).is_file() and (folder / name).stat().st_size >= n for name, n in sizes.items())
