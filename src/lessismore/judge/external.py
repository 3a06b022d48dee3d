"""Judgments published by others, read into one shape so our statistics can be checked against theirs.

Sits under `lessismore stats` (cli.py) and judge/winrate.py. Formats:
- `alpaca_eval`: AlpacaEval's annotations.json, a JSON list of {instruction, output_1, output_2, generator_1,
  generator_2, preference, annotator, ...}. generator_1 wrote output_1 (the baseline, e.g. gpt4_turbo),
  generator_2 output_2 (the model on the leaderboard); preference is in [1, 2], 2 = output_2 better, 1.5 (or the
  legacy 0) a draw; a weighted annotator gives values in between (its probability). null: not annotated.

Every row becomes an `External` (the model's preference in [0, 1], 1 = the model better, as AlpacaEval's
`preference - 1`; the two answers' lengths in characters; where it came from) or a quarantine entry naming file,
row and what is wrong. A row with no preference (null) is kept with preference None: AlpacaEval leaves it out of
the win rate; the length-controlled rate still predicts for it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lessismore.errors import BadValue, NotFound

FORMATS = ("alpaca_eval",)


@dataclass(frozen=True)
class External:
    """One published judgment of a model's answer against a baseline's, on one instruction."""

    instruction: str
    model: str
    baseline: str
    preference: float | None  # the model's preference in [0, 1] (1: the model better, 0.5: a draw); None: none
    model_chars: int  # the model's answer, in characters
    baseline_chars: int
    judge: str
    file: str
    row: int


@dataclass(frozen=True)
class Refused:
    """A row that could not be read, with why: the quarantine of `lessismore stats`."""

    file: str
    row: int
    reason: str
    detail: str


def read_external(fmt: str, paths: Iterable[str | Path]) -> tuple[list[External], list[Refused]]:
    """Every judgment of every file in format `fmt`, in file and row order, and the rows refused."""
    if fmt not in FORMATS:
        raise BadValue(f"--format {fmt!r}: use one of {list(FORMATS)}")
    kept: list[External] = []
    refused: list[Refused] = []
    for path in paths:
        p = Path(path)
        if not p.is_file():
            raise NotFound(f"{p}: no such file; pass AlpacaEval annotations.json files")
        rows = _json_list(p)
        for i, row in enumerate(rows):
            got = _alpaca_row(row, str(p), i)
            (kept if isinstance(got, External) else refused).append(got)
    return kept, refused


def _json_list(path: Path) -> list[Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise BadValue(f"{path}: not JSON ({err}); AlpacaEval annotations are one JSON list") from None
    if not isinstance(data, list):
        raise BadValue(f"{path}: a JSON {type(data).__name__}, not a list; AlpacaEval annotations are one JSON list")
    return data


def _alpaca_row(row: Any, file: str, i: int) -> External | Refused:
    """One annotations.json row, or why it cannot be read.

    >>> r = _alpaca_row({"instruction": "Hi", "output_1": "Hello.", "output_2": "Hi there!", "generator_1": "gpt4",
    ...     "generator_2": "m", "preference": 1.75, "annotator": "w"}, "a.json", 0)
    >>> r.preference, r.model, r.baseline, r.model_chars, r.baseline_chars
    (0.75, 'm', 'gpt4', 9, 6)
    >>> _alpaca_row({"instruction": "Hi", "output_1": "a", "output_2": "b", "generator_1": "g", "generator_2": "m",
    ...     "preference": 2.5}, "a.json", 3).reason
    'preference_out_of_range'
    """
    if not isinstance(row, dict):
        return Refused(file, i, "not_an_object", f"{file} row {i}: a JSON {type(row).__name__}, not an object")
    need = ("instruction", "output_1", "output_2", "generator_1", "generator_2")
    missing = [k for k in need if not isinstance(row.get(k), str)]
    if missing:
        return Refused(file, i, "missing_field", f"{file} row {i}: no text in {', '.join(missing)}")
    pref = row.get("preference")
    if pref is not None and (isinstance(pref, bool) or not isinstance(pref, int | float)):
        return Refused(file, i, "preference_not_a_number", f"{file} row {i}: preference {pref!r} is not a number")
    if pref is not None and not math.isnan(pref):
        pref = 1.5 if pref == 0 else float(pref)  # AlpacaEval's legacy draw
        if not 1.0 <= pref <= 2.0:
            return Refused(file, i, "preference_out_of_range", f"{file} row {i}: preference {pref} is not in [1, 2]")
        value: float | None = pref - 1.0
    else:
        value = None
    return External(
        instruction=row["instruction"],
        model=row["generator_2"],
        baseline=row["generator_1"],
        preference=value,
        model_chars=len(row["output_2"]),
        baseline_chars=len(row["output_1"]),
        judge=str(row.get("annotator") or ""),
        file=file,
        row=i,
    )
