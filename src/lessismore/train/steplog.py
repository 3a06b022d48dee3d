"""The train stage's per-step log, written with DVCLive into logs/train/, so `dvc plots`, `dvc exp show`, VS Code and
Studio read it natively.

One DVCLive metric per column: logs/train/plots/metrics/<column>.tsv (step, value), one row per optimizer step,
appended as each step ends so a crash keeps the curve so far; logs/train/metrics.json holds the latest values and
the step. A resumed run first cuts every file back to the step it resumes from, then appends after it, so the log
never has a duplicate or a missing step. The per-step throughput, seconds and memory sit under perf/: they measure
the machine, not the run, and differ between two identical runs (the other columns do not).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

COLUMNS = ("loss", "lr", "epoch", "tokens")  # the run's own values: a re-run of the same commit repeats them
PERF = ("perf/tokens_per_s", "perf/seconds", "perf/peak_mem_mb")  # the machine's: differ run to run
LOG_COLUMNS = ("step", *COLUMNS, *PERF)


def metric_files(log_dir: str | Path) -> dict[str, Path]:
    """column -> its DVCLive .tsv under `log_dir` (whether it exists yet or not)."""
    base = Path(log_dir) / "plots" / "metrics"
    return {name: base / f"{name}.tsv" for name in (*COLUMNS, *PERF)}


def read_steps(log_dir: str | Path) -> tuple[list[dict[str, float]], list[str]]:
    """Every logged step as {"step": n, "loss": ..., "tokens_per_s": ...} (a column missing at a step left out),
    and a note for each row that could not be read (left out of the curves, never fatal)."""
    rows: dict[int, dict[str, float]] = {}
    problems: list[str] = []
    for name, path in metric_files(log_dir).items():
        if not path.exists():
            continue
        column = name.rsplit("/", 1)[-1]
        with path.open(newline="", encoding="utf-8") as fh:
            for i, row in enumerate(csv.DictReader(fh, delimiter="\t"), start=2):  # line 1 is the header
                try:
                    step, value = int(row["step"]), float(row[column])
                except (KeyError, TypeError, ValueError) as err:
                    problems.append(f"{path} line {i}: {err!r}; the row is left out of the curves")
                    continue
                rows.setdefault(step, {"step": float(step)})[column] = value
    return [rows[s] for s in sorted(rows)], problems


def _cut_after(path: Path, step: int) -> None:
    """Keep the header and the rows up to `step`; rewritten aside and renamed, so a kill here loses no kept row."""
    with path.open(newline="", encoding="utf-8") as fh:
        lines = fh.read().splitlines(keepends=True)
    kept = lines[:1] + [line for line in lines[1:] if line.strip() and int(line.split("\t", 1)[0]) <= step]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(kept), encoding="utf-8")
    tmp.replace(path)


def _live(log_dir: str, resume: bool) -> Any:
    """DVCLive's Live for the step log, tolerant of a git repository without a commit (see _Live)."""
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

    # dvcyaml=None: dvc.yaml declares these files itself; save_dvc_exp=False: the stage is one step of a pipeline
    # (`dvc exp run` makes the experiment); resume=False on a fresh run clears an old run's files
    return _Live(log_dir, resume=resume, save_dvc_exp=False, dvcyaml=None, report=None)


class StepLog:
    """The per-step DVCLive log in `log_dir`; `resume_step` > 0 keeps the rows up to that step and continues.

    No `log_dir` (the other ranks of a distributed run): no log.
    """

    def __init__(self, log_dir: str | Path | None, resume_step: int = 0):
        self._live: Any = None
        if log_dir is None:
            return
        if resume_step > 0:
            for path in metric_files(log_dir).values():
                if path.exists():
                    _cut_after(path, resume_step)
        self._live = _live(str(log_dir), resume=resume_step > 0)

    def write(self, step: int, values: dict[str, float]) -> None:
        """Log one optimizer step: every column of LOG_COLUMNS but step (values of other names are an error)."""
        if self._live is None:
            return
        unknown = set(values) - set(COLUMNS) - set(PERF)
        assert not unknown, f"not a step-log column: {sorted(unknown)}"
        self._live.step = step
        for name, value in values.items():
            self._live.log_metric(name, value)
        self._live.next_step()  # writes metrics.json (the latest values) after every step

    def close(self) -> None:
        if self._live is not None:
            self._live.end()
