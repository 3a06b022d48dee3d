"""The train stage's per-step CSV (logs/train_steps.csv), drawn by `dvc plots` (x: step, y: loss).

One row per optimizer step, flushed as it is written so a crash keeps the curve so far. A resumed run keeps the
rows up to the step it resumes from and appends after them, so the file never has a duplicate or a missing step.
"""

from __future__ import annotations

import csv
from pathlib import Path

LOG_COLUMNS = ("step", "epoch", "loss", "lr", "tokens", "tokens_per_s", "seconds", "peak_mem_mb")


class StepLog:
    """The per-step CSV; `resume_step` > 0 keeps the rows up to that step and continues. No path: no log."""

    def __init__(self, path: str | Path | None, resume_step: int = 0):
        self._fh = None
        if path is None:
            return
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        kept: list[list[str]] = []
        if resume_step > 0 and path.exists():
            with path.open(newline="", encoding="utf-8") as fh:
                rows = list(csv.reader(fh))
            if rows and tuple(rows[0]) == LOG_COLUMNS:
                kept = [r for r in rows[1:] if r and int(r[0]) <= resume_step]
        tmp = path.with_name(path.name + ".tmp")  # rewritten aside and renamed: a kill here loses no kept row
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerows([list(LOG_COLUMNS), *kept])
        tmp.replace(path)
        self._fh = path.open("a", newline="", encoding="utf-8")
        self._csv = csv.writer(self._fh)

    def write(
        self, step: int, epoch: float, loss: float, lr: float, tokens: int, tok_s: float, seconds: float, mem: float
    ) -> None:
        if self._fh is not None:
            row = [step, epoch, f"{loss:.6f}", f"{lr:.6g}", tokens, f"{tok_s:.1f}", f"{seconds:.2f}", f"{mem:.0f}"]
            self._csv.writerow(row)
            self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
