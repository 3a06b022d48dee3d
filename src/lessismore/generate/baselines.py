"""Baseline answers imported from published files, so the judge can compare against models we never run.

The import@<name> stage (params generate.baselines.<name> -> outputs/responses/<name>.jsonl). Formats:
  alpaca_eval  AlpacaEval model_outputs.json: a JSON list of {instruction, output, generator, ...}
  just_eval    just-eval *.to_eval.json: a JSON list of {id, instruction, source_id, output, generator, ...}
  mt_bench     FastChat MT-Bench model_answer/<model>.jsonl: {question_id, model_id, choices: [{turns: [...]}]};
               the first turn answers a single-turn prompt (MT-Bench files carry no question text: ids only)
  jsonl        one object a line: {prompt or prompt_id (or id), response or output, optional decoding}
Each answer is matched to a test prompt by id (the file's id equals the prompt's source id, meta["id"], or its
content id) or else by normalised, case-folded text when no id says otherwise (a row whose ids name another
question is reported, never silently paired). Test prompts left without an answer are reported, answers to
prompts outside the test set are counted and ignored, and rows without answer text become records.Dropped.
A Response's checkpoint is the file's sha256 (16 hex digits), so a changed file is a different baseline.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lessismore.errors import BadValue, NotFound
from lessismore.records import Dropped, Origin, Prompt, Response, normalise, write_jsonl

if TYPE_CHECKING:
    from lessismore.config import Baseline

FORMATS = ("alpaca_eval", "just_eval", "mt_bench", "jsonl")


@dataclass(frozen=True)
class Answer:
    """One answer as read from a baseline file, before matching."""

    row: str  # list index or line number in the file
    text: str
    ids: tuple[str, ...] = ()  # whatever ids the file gives it (MT-Bench question_id, just-eval id/source_id)
    prompt: str = ""  # the question text, when the file has it
    decoding: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)  # generator, dataset, turns...


@dataclass(frozen=True)
class BaselineImport:
    responses: list[Response]  # in test-prompt order
    unmatched: list[Prompt]  # test prompts the file does not answer
    extra: int  # answers to prompts that are not in the test set (ignored)
    duplicates: int  # second answers to an already-answered prompt (the first is kept)
    dropped: list[Dropped]  # rows that carry no usable answer
    checkpoint: str
    ambiguous: list[str] = field(default_factory=list)  # rows not paired: their ids name another question


def text_key(text: str) -> str:
    """How texts are compared: normalised whitespace and Unicode, case-folded.

    >>> text_key("  What IS  love?\\n") == text_key("what is love?")
    True
    """
    return normalise(text).casefold()


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _first_text(value: Any) -> str | None:
    """An answer field: a string, or the first string of a list (just-eval keeps sampled outputs as a list)."""
    if isinstance(value, list) and value:
        value = value[0]
    return value if isinstance(value, str) and value.strip() else None


def _ids(*values: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in values if v is not None and str(v) != "")


def _answer(fmt: str, row: str, obj: dict[str, Any]) -> Answer | None:
    if fmt in ("alpaca_eval", "just_eval"):
        text, prompt = _first_text(obj.get("output")), obj.get("instruction")
        ids = _ids(obj.get("id"), obj.get("source_id"))
        meta = {k: obj[k] for k in ("generator", "dataset", "datasplit") if k in obj}
    elif fmt == "mt_bench":
        turns = ((obj.get("choices") or [{}])[0] or {}).get("turns") or []
        text, ids, prompt = _first_text(turns), _ids(obj.get("question_id")), None
        meta = {"generator": obj.get("model_id"), "turns": len(turns)}
    else:
        text, ids = _first_text(obj.get("response", obj.get("output"))), _ids(obj.get("prompt_id"), obj.get("id"))
        prompt, meta = obj.get("prompt", obj.get("instruction")), {}
    if text is None:
        return None
    decoding = obj.get("decoding") if isinstance(obj.get("decoding"), dict) else {}
    return Answer(row, text, ids, prompt if isinstance(prompt, str) else "", decoding, meta)


def read_answers(path: str | Path, fmt: str, name: str) -> tuple[list[Answer], list[Dropped]]:
    """Every answer in the file, and a Dropped for each row that is not one (bad JSON, no answer text)."""
    path = Path(path)
    if fmt not in FORMATS:
        raise BadValue(f"generate.baselines {name!r}: format {fmt!r} is not one of {list(FORMATS)}")
    if not path.exists():
        raise NotFound(f"generate.baselines {name!r}: {path} does not exist; fix its path in params.yaml")
    rows: list[tuple[str, Any]] = []
    if fmt in ("alpaca_eval", "just_eval"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise BadValue(f"generate.baselines {name!r}: {path} is not JSON ({err}); expected a list") from err
        if not isinstance(data, list):
            raise BadValue(f"generate.baselines {name!r}: {path} holds a {type(data).__name__}, not a list")
        rows = [(str(i), obj) for i, obj in enumerate(data)]
    else:
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    rows.append((str(i), json.loads(line)))
                except json.JSONDecodeError:
                    rows.append((str(i), line))
    answers, dropped = [], []
    for row, obj in rows:
        ans = _answer(fmt, row, obj) if isinstance(obj, dict) else None
        if ans is None:
            reason = "no_answer_text" if isinstance(obj, dict) else "malformed_json"
            detail = f"{path} row {row}: no {fmt} answer text here; fix or remove the row"
            record = obj if isinstance(obj, dict) else {"raw": str(obj)[:500]}
            dropped.append(Dropped("import", reason, Origin(name, str(path), row), detail, record))
        else:
            answers.append(ans)
    return answers, dropped


def match_answers(
    answers: list[Answer], prompts: list[Prompt], name: str, checkpoint: str, file: str = ""
) -> tuple[list[Response], list[Prompt], int, int, list[str]]:
    """(responses in prompt order, unmatched prompts, answers to other prompts, duplicate answers, the rows left
    unpaired because their ids say they answer another question than the prompt with their text, each with why).

    By the file's own ids first; by text only when no id says otherwise: once the file's ids match ours, a row
    whose ids match none of our prompts is about another question even if its text is the same (just-eval's
    alpaca_eval rows repeat some LIMA test prompts word for word).
    """
    by_id: dict[str, Prompt] = {}
    by_text: dict[str, Prompt] = {}  # one prompt a text: a prompt's content id is its normalised text's hash
    for p in prompts:
        by_id.setdefault(p.id, p)
        if p.meta.get("id") is not None:
            by_id.setdefault(str(p.meta["id"]), p)
        by_text.setdefault(text_key(p.text), p)
    shared_ids = any(i in by_id for ans in answers for i in ans.ids)
    found: dict[str, Response] = {}
    extra = duplicates = 0
    ambiguous: list[str] = []
    for ans in answers:
        prompt, how = next(((by_id[i], "id") for i in ans.ids if i in by_id), (None, ""))
        if prompt is None and ans.prompt:
            prompt, how = by_text.get(text_key(ans.prompt)), "text"
            if prompt is not None and shared_ids and ans.ids and prompt.meta.get("id") is not None:
                why = f"its text is prompt {prompt.meta['id']}'s, but its ids {list(ans.ids)} name another question"
                ambiguous.append(f"row {ans.row}: {why}")
                continue
        if prompt is None:
            extra += 1
        elif prompt.id in found:
            duplicates += 1
        else:
            meta = {**ans.meta, "matched_by": how, "file": file, "row": ans.row}
            found[prompt.id] = Response(prompt.id, name, checkpoint, ans.text.strip(), ans.decoding, meta)
    ordered = list({p.id: p for p in prompts}.values())
    unmatched = [p for p in ordered if p.id not in found]
    return [found[p.id] for p in ordered if p.id in found], unmatched, extra, duplicates, ambiguous


def import_baseline(name: str, fmt: str, path: str | Path, prompts: list[Prompt]) -> BaselineImport:
    """Read a baseline file and match its answers to the test prompts."""
    answers, dropped = read_answers(path, fmt, name)
    checkpoint = file_hash(Path(path))
    responses, unmatched, extra, duplicates, ambiguous = match_answers(answers, prompts, name, checkpoint, str(path))
    return BaselineImport(responses, unmatched, extra, duplicates, dropped, checkpoint, ambiguous)


def import_one(name: str, spec: Baseline, prompts: list[Prompt], out: Path) -> tuple[dict[str, Any], list[Dropped]]:
    """The published answers of `spec.path` become `out`, matched to `prompts`; returns the metrics (what matched,
    what did not) and the rows that carry no usable answer (the quarantine)."""
    imp = import_baseline(name, spec.format, spec.path, prompts)
    write_jsonl(out, imp.responses)
    for p in imp.unmatched:
        print(
            f"import: WARNING {name!r} has no answer to test prompt {p.id} "
            f"({p.origin.file} row {p.origin.row}): {p.text[:80]!r}"
        )
    for why in imp.ambiguous:
        print(f"import: WARNING {name!r} {spec.path} {why}: not paired with any prompt")
    counts = {
        "matched": len(imp.responses),
        "unmatched": len(imp.unmatched),
        "extra": imp.extra,
        "duplicates": imp.duplicates,
        "ambiguous": len(imp.ambiguous),
        "dropped": len(imp.dropped),
    }
    metrics = {
        "system": name,
        "kind": "imported",
        "responses": len(imp.responses),
        "prompts": len(prompts),
        "checkpoint": imp.checkpoint,
        "imported": {"format": spec.format, "path": spec.path, **counts},
    }
    print(
        f"import: {name}: {counts['matched']} matched, {counts['unmatched']} test prompts unanswered, "
        f"{imp.extra} answers to other prompts ignored, {counts['dropped']} rows dropped"
    )
    return metrics, imp.dropped
