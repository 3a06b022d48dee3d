"""The train stage's per-step log, written with DVCLive, so `dvc plots`, `dvc exp show`, VS Code and Studio read it
natively.

Two DVCLive folders, one row per optimizer step in each, appended as each step ends so a crash keeps the curve so far:
- logs/train/: what the run computed (loss, lr, epoch, tokens): a re-run of the same commit repeats it exactly;
- logs/train_perf/: what the machine measured (tokens/s, seconds, peak memory): different on every run, so it is
  kept apart and declared volatile (contract.VOLATILE), and the run's own log stays byte-identical.
In each, plots/metrics/<column>.tsv holds (step, value) and metrics.json the last step's values. A resumed run first
cuts every file back to the step it resumes from, then appends after it, so no step is duplicated or missing.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

COLUMNS = ("loss", "lr", "epoch", "tokens")  # the run's own values
PERF = ("tokens_per_s", "seconds", "peak_mem_mb")  # the machine's


def metric_files(log_dir: str | Path) -> list[Path]:
    """The DVCLive .tsv files under `log_dir` (one a logged column), sorted."""
    return sorted((Path(log_dir) / "plots" / "metrics").rglob("*.tsv"))


def read_steps(*log_dirs: str | Path) -> tuple[list[dict[str, float]], list[str]]:
    """Every logged step of these DVCLive folders as {"step": n, "loss": ..., "tokens_per_s": ...} (a column missing
    at a step left out), and a note for each row that could not be read (left out of the curves, never fatal)."""
    rows: dict[int, dict[str, float]] = {}
    problems: list[str] = []
    for path in (p for d in log_dirs for p in metric_files(d)):
        with path.open(newline="", encoding="utf-8") as fh:
            for i, row in enumerate(csv.DictReader(fh, delimiter="\t"), start=2):  # line 1 is the header
                try:
                    step, value = int(row["step"]), float(row[path.stem])
                except (KeyError, TypeError, ValueError) as err:
                    problems.append(f"{path} line {i}: {err!r}; the row is left out of the curves")
                    continue
                rows.setdefault(step, {"step": float(step)})[path.stem] = value
    return [rows[s] for s in sorted(rows)], problems


def _cut_after(path: Path, step: int) -> None:
    """Keep the header and the rows up to `step`; rewritten aside and renamed, so a kill here loses no kept row."""
    with path.open(newline="", encoding="utf-8") as fh:
        lines = fh.read().splitlines(keepends=True)
    kept = lines[:1] + [line for line in lines[1:] if line.strip() and int(line.split("\t", 1)[0]) <= step]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(kept), encoding="utf-8")
    tmp.replace(path)


def _live(log_dir: Path, resume_step: int) -> Any:
    """DVCLive's Live for one folder, cut back to `resume_step` first; tolerant of a git repository without a
    commit (see _Live)."""
    from dvclive import Live
    from scmrepo.exceptions import SCMError

    class _Live(Live):
        def _init_dvc(self) -> None:
            # DVCLive 3.49.1 asks git for HEAD before it checks for an empty repository, and crashes on a fresh
            # `git init` (seen in our tests; a user's first run can be one). Such a repository has no experiment to
            # log to, so the step log goes on without DVC's side: the files are the same.
            try:
                super()._init_dvc()
            except SCMError:
                self._dvc_repo, self._dvc_file, self._save_dvc_exp = None, "dvc.yaml", False

    if resume_step > 0:
        for path in metric_files(log_dir):
            _cut_after(path, resume_step)
    # dvcyaml=None: dvc.yaml declares these files itself; save_dvc_exp=False: the stage is one step of a pipeline
    # (`dvc exp run` makes the experiment); resume=False on a fresh run clears an old run's files
    live = _Live(str(log_dir), resume=resume_step > 0, save_dvc_exp=False, dvcyaml=None, report=None)
    # DVCLive makes the folder at the first logged step; a run resumed after its last step logs none, and the stage
    # must still leave the out that dvc.yaml declares
    (log_dir / "plots" / "metrics").mkdir(parents=True, exist_ok=True)
    return live


class StepLog:
    """The per-step DVCLive logs: the run's columns in `log_dir`, the machine's in `perf_dir`; `resume_step` > 0
    keeps the rows up to that step and continues. No `log_dir` (the other ranks of a distributed run): no log."""

    def __init__(self, log_dir: str | Path | None, perf_dir: str | Path | None = None, resume_step: int = 0):
        self._lives: list[tuple[Any, tuple[str, ...]]] = []
        if log_dir is not None:
            self._lives.append((_live(Path(log_dir), resume_step), COLUMNS))
        if log_dir is not None and perf_dir is not None:
            self._lives.append((_live(Path(perf_dir), resume_step), PERF))

    def write(self, step: int, values: dict[str, float]) -> None:
        """Log one optimizer step: the columns of COLUMNS and PERF given in `values` (other names are an error)."""
        unknown = set(values) - set(COLUMNS) - set(PERF)
        assert not unknown, f"not a step-log column: {sorted(unknown)}"
        for live, columns in self._lives:
            live.step = step
            for name in columns:
                if name in values:
                    live.log_metric(name, values[name])
            live.next_step()  # writes metrics.json (the latest values) after every step

    def close(self) -> None:
        for live, _ in self._lives:
            live.end()
