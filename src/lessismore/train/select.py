"""Checkpoint selection (LIMA section 3): which epoch-end checkpoint becomes models/finetuned/.

LIMA trains 15 epochs and picks a checkpoint between epochs 5 and 10 on its dev set, by judging the dev answers
(perplexity does not track quality). Modes (params `train.select`, candidates from `train.select_epochs`):
- "last": the last candidate epoch, nothing scored;
- "dev_loss": the lowest mean response-token loss on dev examples (`dev_loss`, the same masking as training);
- "judge": the highest score from a `DevJudge` over the candidate's answers to the dev prompts (`judge_scorer`);
  judge/dev.py builds one from any judge entry (the candidate's preference rate over the base model's answers).
Our dev prompts (data/sources/prompts/dev.jsonl) have no reference answers, so dev_loss needs examples with
answers: `holdout_split` sets aside a seeded, content-addressed slice of the curated training set for it.
`select_checkpoint` returns the chosen candidate and a table for metrics/train.json saying what won and why.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from lessismore.errors import BadValue
from lessismore.records import content_id
from lessismore.train.collate import IGNORE_INDEX, collate, encode_example

SELECT_MODES = {"last": None, "dev_loss": "min", "judge": "max"}  # mode -> which score wins


class CheckpointScore(Protocol):
    """Scores one candidate checkpoint ({"epoch", "path", ...}); `select_checkpoint` knows which way is better."""

    def __call__(self, candidate: Mapping[str, Any]) -> float: ...


class DevJudge(Protocol):
    """A candidate's answers to the dev prompts -> one score, higher is better (judge/dev.py: preference rate)."""

    def __call__(self, prompts: Sequence[str], answers: Sequence[str]) -> float: ...


def holdout_split(examples: Sequence[Any], n: int, seed: int = 0) -> tuple[list[Any], list[Any]]:
    """(train, held out): `n` examples set aside by a seeded hash of their content id, order kept otherwise.

    >>> from types import SimpleNamespace as NS
    >>> train, held = holdout_split([NS(id=str(i)) for i in range(5)], 2)
    >>> len(train), len(held), sorted(e.id for e in train + held)
    (3, 2, ['0', '1', '2', '3', '4'])
    """
    if not 0 <= n < len(examples):
        raise BadValue(f"dev holdout of {n} from {len(examples)} examples: keep at least one to train on")
    ranked = sorted(range(len(examples)), key=lambda i: content_id(seed, getattr(examples[i], "id", "") or i))
    held = set(ranked[:n])
    return [e for i, e in enumerate(examples) if i not in held], [e for i, e in enumerate(examples) if i in held]


def dev_loss(model: Any, tokenizer: Any, examples: Sequence[Any], max_tokens: int, batch_size: int = 8) -> float:
    """Mean cross-entropy over every response token of `examples` (token-weighted, as in training), in eval mode.

    Examples left without a response token after trimming are skipped; none left is an error.
    """
    import torch
    import torch.nn.functional as F

    encoded = [encode_example(ex.messages, tokenizer, max_tokens) for ex in examples]
    usable = [e for e in encoded if any(t != IGNORE_INDEX for t in e["labels"])]
    usable.sort(key=lambda e: len(e["labels"]))  # similar lengths share a batch: less padding
    if not usable:
        raise BadValue(f"no dev example keeps a response token within {max_tokens} tokens; raise train.max_tokens")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device, was_training = next(model.parameters()).device, model.training
    model.eval()
    total, count = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(usable), batch_size):
            batch = {k: v.to(device) for k, v in collate(usable[start : start + batch_size], pad_id).items()}
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            labels = batch["labels"][:, 1:]
            total += F.cross_entropy(
                logits[:, :-1].flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE_INDEX, reduction="sum"
            ).item()
            count += int((labels != IGNORE_INDEX).sum())
    model.train(was_training)
    return total / count


def dev_loss_scorer(
    examples: Sequence[Any], max_tokens: int, load: Callable[[str], tuple[Any, Any]]
) -> CheckpointScore:
    """A CheckpointScore that loads each candidate's `path` with `load` (e.g. models.load_causal_lm)."""

    def score(candidate: Mapping[str, Any]) -> float:
        model, tokenizer = load(str(candidate["path"]))
        return dev_loss(model, tokenizer, examples, max_tokens)

    return score


def judge_scorer(prompts: Sequence[str], judge: DevJudge, backend_for: Callable[[Mapping[str, Any]], Any]):
    """A CheckpointScore for mode "judge": the candidate's backend (a GenerateBackend) answers, the judge scores."""

    def score(candidate: Mapping[str, Any]) -> float:
        answers = [r.text for r in backend_for(candidate).generate(list(prompts))]
        return judge(list(prompts), answers)

    return score


def _json_score(value: float | None) -> float | None:
    """metrics/train.json is strict JSON: a NaN or infinite score is written as null (the row says diverged).

    >>> _json_score(float("nan")), _json_score(1.5), _json_score(None)
    (None, 1.5, None)
    """
    return value if value is not None and math.isfinite(value) else None


def select_checkpoint(
    candidates: Sequence[Mapping[str, Any]], score: CheckpointScore | None, *, mode: str, epochs: Sequence[int] = ()
) -> tuple[Mapping[str, Any], dict[str, Any]]:
    """(chosen candidate, table): the table has each candidate's score and the reason the chosen one won.

    Candidates are epoch-end checkpoints {"epoch": int, "path": str, ...}; only those whose epoch is in `epochs`
    compete (all of them when `epochs` is empty or names none of them, which the table says). A score that is not
    finite (a diverged run) never wins; ties go to the earlier epoch.
    """
    if mode not in SELECT_MODES:
        raise BadValue(f"train.select {mode!r}: use one of {sorted(SELECT_MODES)}")
    if not candidates:
        raise BadValue("no checkpoint to select from: training saved no epoch-end checkpoint")
    in_window = [c for c in candidates if c["epoch"] in set(epochs)]
    pool = in_window or list(candidates)
    note = f"; no checkpoint at select_epochs {list(epochs)}: all were candidates" if epochs and not in_window else ""
    direction = SELECT_MODES[mode]
    if direction is None:
        chosen, scores = max(pool, key=lambda c: c["epoch"]), {}
        reason = f"mode last: the last candidate epoch, {chosen['epoch']}"
    else:
        if score is None:
            raise BadValue(f"train.select {mode!r} needs a score function")
        scores = {id(c): float(score(c)) for c in pool}
        finite = [c for c in pool if math.isfinite(scores[id(c)])]
        if not finite:
            raise BadValue(f"every candidate scored a non-finite {mode}: {[scores[id(c)] for c in pool]}")
        sign = 1.0 if direction == "min" else -1.0
        chosen = min(finite, key=lambda c: (sign * scores[id(c)], c["epoch"]))
        reason = f"mode {mode}: epoch {chosen['epoch']} has the {'lowest' if sign > 0 else 'highest'} score, "
        reason += f"{scores[id(chosen)]:.6g}, of {len(pool)} candidates"
    rows = [
        {
            "epoch": c["epoch"],
            "path": str(c["path"]),
            "candidate": any(c is p for p in pool),
            "score": _json_score(scores.get(id(c))),
            "diverged": id(c) in scores and not math.isfinite(scores[id(c)]),
            "chosen": c is chosen,
        }
        for c in candidates
    ]
    table = {
        "mode": mode,
        "select_epochs": list(epochs),
        "chosen_epoch": chosen["epoch"],
        "chosen_path": str(chosen["path"]),
        "reason": reason + note,
        "candidates": rows,
    }
    return chosen, table


def train_metrics(summary: Mapping[str, Any], selection: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """metrics/train.json: the run's totals (loop.train's summary), the checkpoints, the selection table, `extra`."""
    return {
        "counts": {"examples": summary["examples"]},  # records only: the report charts counts on one scale
        "steps": summary["steps"],
        "tokens": summary["tokens"],
        "skipped_no_response_tokens": summary["skipped_no_response_tokens"],
        "response_tokens": summary["response_tokens"],
        "epochs": summary["epochs"],
        "final_loss": round(summary["final_loss"], 4),
        "mean_loss_last_10": round(summary["mean_loss_last_10"], 4),
        "trainable_params": summary["trainable_params"],
        "precision": summary["precision"],
        "world_size": summary["world_size"],
        "resumed_from_step": summary["resumed_from_step"],
        "checkpoints": [{k: ck[k] for k in ("step", "epoch", "epoch_end", "path")} for ck in summary["checkpoints"]],
        "selection": selection,
        **extra,
    }
