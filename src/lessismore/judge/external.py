"""Judgments published by others, read into one shape so our statistics can be checked against theirs.

Sits under `lessismore stats` (cli.py) and judge/winrate.py. Formats (a JSON list, or JSON Lines):
- `alpaca_eval`: AlpacaEval's annotations.json, {instruction, output_1, output_2, generator_1, generator_2,
  preference, annotator, ...}. generator_1 wrote output_1 (the baseline, e.g. gpt4_turbo), generator_2 output_2
  (the model on the leaderboard); preference is in [1, 2], 2 = output_2 better, 1.5 (or the legacy 0) a draw; a
  weighted annotator gives values in between (its probability). null: not annotated.
- `mtbench_human`: MT-Bench's human judgments (lmsys/mt_bench_human_judgments), {question_id, model_a, model_b,
  winner: model_a | model_b | tie | tie (bothbad), judge, turn, conversation_a, conversation_b}.
- `mtbench_judge`: FastChat's pairwise judgment files (model_judgment/gpt-4_pair.jsonl), {question_id, model_1,
  model_2, g1_winner, g2_winner, judge, turn}: g1 judged model_1 shown first, g2 the swapped order, both mapped
  back to model_1 | model_2 | tie | error. Two orders that agree give their winner; two that disagree a tie
  (FastChat's own reading); an "error" in either refuses the row. The file holds no answers: no lengths, so no
  length control.
- `pairs`: labelled pairs (LLMBar and the like), {input, output_1, output_2, label}: label 1 or 2, the better
  output (0 or "tie": neither). Read as "output_2" against "output_1": how often the second is labelled better.

Every row becomes `External`s (the model's preference in [0, 1], 1 = the model better, as AlpacaEval's
`preference - 1`; the two answers' lengths in characters; where it came from) or a quarantine entry naming file,
row and what is wrong. A judgment between two models (the MT-Bench formats) is counted from both sides, so each
model's numbers are over all its games. A row with no preference (null) is kept with preference None: AlpacaEval
leaves it out of the win rate; the length-controlled rate still predicts for it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lessismore.errors import BadValue, NotFound

FORMATS = ("alpaca_eval", "mtbench_human", "mtbench_judge", "pairs")


@dataclass(frozen=True)
class External:
    """One published judgment of a model's answer against a baseline's, on one instruction."""

    instruction: str
    model: str
    baseline: str
    preference: float | None  # the model's preference in [0, 1] (1: the model better, 0.5: a draw); None: none
    model_chars: int | None  # the model's answer, in characters (None: the format carries no answers)
    baseline_chars: int | None
    judge: str
    file: str
    row: int
    model_text: str = ""  # the answers themselves where the format has them (judge-audit shows them to a judge)
    baseline_text: str = ""


@dataclass(frozen=True)
class Refused:
    """A row that could not be read, with why: the quarantine of `lessismore stats`."""

    file: str
    row: int
    reason: str
    detail: str


def read_external(fmt: str, paths: Iterable[str | Path]) -> tuple[list[External], list[Refused]]:
    """Every judgment of every file in format `fmt`, in file and row order, and the rows refused."""
    if fmt not in READERS:
        raise BadValue(f"--format {fmt!r}: use one of {list(FORMATS)}")
    kept: list[External] = []
    refused: list[Refused] = []
    for path in paths:
        p = Path(path)
        if not p.is_file():
            raise NotFound(f"{p}: no such file; pass {fmt} judgment files")
        start = len(refused)
        for i, row in _records(p, refused):
            got = READERS[fmt](row, str(p), i)
            for one in got if isinstance(got, list) else [got]:
                (kept if isinstance(one, External) else refused).append(one)
        refused[start:] = sorted(refused[start:], key=lambda r: r.row)  # the broken lines among the others
    return kept, refused


def _records(path: Path, refused: list[Refused]) -> Iterable[tuple[int, Any]]:
    """(row number, value) of a JSON list, or of each line of a JSON Lines file (a broken line is refused)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    if text.lstrip().startswith("["):
        try:
            return list(enumerate(json.loads(text)))
        except ValueError as err:
            raise BadValue(f"{path}: not JSON ({err}); give a JSON list or one JSON object a line") from None
    rows = []
    for i, line in enumerate(text.splitlines()):
        if not line.strip():
            continue
        try:
            rows.append((i, json.loads(line)))
        except ValueError as err:
            refused.append(Refused(str(path), i, "not_json", f"{path} row {i}: not JSON ({err})"))
    if not rows and not refused:
        raise BadValue(f"{path}: no judgments; give a JSON list or one JSON object a line")
    return rows


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
        model_text=row["output_2"],
        baseline_text=row["output_1"],
    )


def _both_sides(one: External) -> list[External]:
    """A judgment between two models, from each one's side."""
    other = None if one.preference is None else 1.0 - one.preference
    swapped = replace(
        one,
        model=one.baseline,
        baseline=one.model,
        preference=other,
        model_chars=one.baseline_chars,
        baseline_chars=one.model_chars,
        model_text=one.baseline_text,
        baseline_text=one.model_text,
    )
    return [one, swapped]


def _missing(row: Any, file: str, i: int, need: tuple[str, ...]) -> Refused | None:
    if not isinstance(row, dict):
        return Refused(file, i, "not_an_object", f"{file} row {i}: a JSON {type(row).__name__}, not an object")
    missing = [k for k in need if row.get(k) in (None, "")]
    if missing:
        return Refused(file, i, "missing_field", f"{file} row {i}: no {', '.join(missing)}")
    return None


def _answer_chars(conversation: Any, turn: int) -> int | None:
    """The length of the assistant's answer at `turn` (1-based) of an MT-Bench conversation."""
    if not isinstance(conversation, list):
        return None
    answers = [m.get("content") for m in conversation if isinstance(m, dict) and m.get("role") == "assistant"]
    return len(answers[turn - 1]) if 0 < turn <= len(answers) and isinstance(answers[turn - 1], str) else None


def _mtbench_human_row(row: Any, file: str, i: int) -> list[External] | Refused:
    """One human MT-Bench judgment, from both models' sides.

    >>> a = _mtbench_human_row({"question_id": 81, "model_a": "gpt-4", "model_b": "llama-13b", "winner": "model_a",
    ...     "judge": "expert_0", "turn": 1}, "h.jsonl", 0)
    >>> [(x.model, x.baseline, x.preference) for x in a]
    [('gpt-4', 'llama-13b', 1.0), ('llama-13b', 'gpt-4', 0.0)]
    """
    if (bad := _missing(row, file, i, ("question_id", "model_a", "model_b", "winner", "turn"))) is not None:
        return bad
    prefs = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "tie (bothbad)": 0.5}
    if row["winner"] not in prefs:
        return Refused(
            file, i, "unknown_winner", f"{file} row {i}: winner {row['winner']!r} is not one of {list(prefs)}"
        )
    turn = int(row["turn"]) if str(row["turn"]).isdigit() else 0
    one = External(
        instruction=f"mt_bench {row['question_id']} turn {turn}",
        model=str(row["model_a"]),
        baseline=str(row["model_b"]),
        preference=prefs[row["winner"]],
        model_chars=_answer_chars(row.get("conversation_a"), turn),
        baseline_chars=_answer_chars(row.get("conversation_b"), turn),
        judge=str(row.get("judge") or ""),
        file=file,
        row=i,
    )
    return _both_sides(one)


def _mtbench_judge_row(row: Any, file: str, i: int) -> list[External] | Refused:
    """One FastChat pairwise judgment (two orders), from both models' sides.

    >>> r = {"question_id": 81, "model_1": "a", "model_2": "b", "g1_winner": "model_1", "g2_winner": "model_2",
    ...      "judge": ["gpt-4", "pair-v2"], "turn": 1}
    >>> [x.preference for x in _mtbench_judge_row(r, "j.jsonl", 0)]  # the orders disagree: a tie
    [0.5, 0.5]
    >>> _mtbench_judge_row(r | {"g2_winner": "error"}, "j.jsonl", 1).reason
    'judge_error'
    """
    need = ("question_id", "model_1", "model_2", "g1_winner", "g2_winner", "turn")
    if (bad := _missing(row, file, i, need)) is not None:
        return bad
    g1, g2 = row["g1_winner"], row["g2_winner"]
    known = ("model_1", "model_2", "tie")
    if "error" in (g1, g2):
        return Refused(
            file, i, "judge_error", f"{file} row {i}: the judge's reply could not be read (g1 {g1}, g2 {g2})"
        )
    if g1 not in known or g2 not in known:
        return Refused(file, i, "unknown_winner", f"{file} row {i}: g1_winner {g1!r}, g2_winner {g2!r}: not {known}")
    winner = g1 if g1 == g2 else "tie"
    judge = row["judge"]
    one = External(
        instruction=f"mt_bench {row['question_id']} turn {row['turn']}",
        model=str(row["model_1"]),
        baseline=str(row["model_2"]),
        preference={"model_1": 1.0, "model_2": 0.0, "tie": 0.5}[winner],
        model_chars=None,
        baseline_chars=None,
        judge="/".join(map(str, judge)) if isinstance(judge, list) else str(judge),
        file=file,
        row=i,
    )
    return _both_sides(one)


def _pairs_row(row: Any, file: str, i: int) -> External | Refused:
    """One labelled pair: "output_2" against "output_1".

    >>> _pairs_row({"input": "Q", "output_1": "a", "output_2": "bb", "label": 2}, "p.jsonl", 0).preference
    1.0
    """
    if (bad := _missing(row, file, i, ("input", "output_1", "output_2"))) is not None:
        return bad
    labels = {1: 0.0, 2: 1.0, 0: 0.5, "1": 0.0, "2": 1.0, "0": 0.5, "tie": 0.5}
    label = row.get("label")
    if isinstance(label, bool) or label not in labels:
        return Refused(file, i, "unknown_label", f"{file} row {i}: label {label!r} is not 1, 2 or 0 (tie)")
    return External(
        instruction=str(row["input"]),
        model="output_2",
        baseline="output_1",
        preference=labels[label],
        model_chars=len(str(row["output_2"])),
        baseline_chars=len(str(row["output_1"])),
        judge=str(row.get("annotator") or "label"),
        file=file,
        row=i,
        model_text=str(row["output_2"]),
        baseline_text=str(row["output_1"]),
    )


READERS = {
    "alpaca_eval": _alpaca_row,
    "mtbench_human": _mtbench_human_row,
    "mtbench_judge": _mtbench_judge_row,
    "pairs": _pairs_row,
}
