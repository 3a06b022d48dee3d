"""Checkpoint selection by judging (LIMA §3: the epoch is chosen on the dev prompts by judging, not perplexity).

Used by the train stage with `train.select: judge`: each candidate epoch answers the dev prompts, and a configured
judge compares those answers with a fixed reference's (the base model's) in both orders, through the same
protocol, cache and aggregation as the judge stage. The score is the candidate's preference rate, (wins + ties / 2)
over readable pairs, so 0.5 means "no better than the reference"; train/select.py picks the highest.
`epoch_scorer` is the train stage's one entry point: params in, a train.select CheckpointScore out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lessismore.judge import Template
from lessismore.judge.cache import KeyedCache
from lessismore.judge.outcome import pair_outcomes
from lessismore.judge.protocol import Backend, JudgeRun, Pair, judge_pairs
from lessismore.records import Origin, Prompt, Response

if TYPE_CHECKING:
    from lessismore.config import DevDecoding, JudgeSpec

CANDIDATE, REFERENCE = "candidate", "reference"


def preference_rate(outcomes: Sequence[str]) -> float:
    """(wins + ties / 2) / readable pairs; NaN when nothing was readable (select never picks it).

    >>> preference_rate(["win", "tie", "loss", "invalid"]), math.isnan(preference_rate(["invalid"]))
    (0.5, True)
    """
    readable = [o for o in outcomes if o in ("win", "tie", "loss")]
    if not readable:
        return math.nan
    return (readable.count("win") + readable.count("tie") / 2) / len(readable)


def dev_judge(
    backend: Backend,
    template: Template,
    run: JudgeRun,
    reference: Sequence[str],
    cache: KeyedCache | None = None,
    log: Callable[[str], None] = print,
) -> Callable[[Sequence[str], Sequence[str]], float]:
    """A train.select.DevJudge: (dev prompts, a candidate's answers) -> its preference rate over `reference`."""

    def score(prompts: Sequence[str], answers: Sequence[str]) -> float:
        if not len(prompts) == len(answers) == len(reference):
            raise ValueError(f"{len(prompts)} dev prompts, {len(answers)} answers, {len(reference)} reference answers")
        pairs = []
        for i, (text, answer, ref) in enumerate(zip(prompts, answers, reference, strict=True)):
            prompt = Prompt(text=text, split="dev", origin=Origin("dev", "dev prompts", str(i + 1)))
            cand = Response(prompt_id=prompt.id, model=CANDIDATE, checkpoint="", text=answer, decoding={})
            base = Response(prompt_id=prompt.id, model=REFERENCE, checkpoint="", text=ref, decoding={})
            pairs.append(Pair(prompt, cand, base))
        judgments, stats = judge_pairs(pairs, backend, template, run, cache)
        outcomes = [o.outcome for o in pair_outcomes(judgments, CANDIDATE)]
        rate = preference_rate(outcomes)
        wins, ties, losses = (outcomes.count(o) for o in ("win", "tie", "loss"))
        log(
            f"train: dev judge {run.name}: {wins} wins, {ties} ties, {losses} losses over {len(outcomes)} dev prompts"
            f" -> {rate:.3f} ({stats.calls} calls)"
        )
        return rate

    return score


def epoch_scorer(
    spec: JudgeSpec,
    decoding: DevDecoding,
    prompts: Sequence[str],
    *,
    base_dir: Path,
    cache_path: Path,
    seed: int,
) -> Callable[[Mapping[str, Any]], float]:
    """train.select judge: each candidate epoch (its checkpoint `path`) answers the dev `prompts` as `decoding` says,
    and the judge entry `spec` (params train.select_judge) compares the answers with the base model's; verdicts are
    cached in `cache_path` (kept with the checkpoints between runs)."""
    from lessismore.generate.transformers_backend import TransformersBackend
    from lessismore.judge import load_template
    from lessismore.judge.factory import open_judge
    from lessismore.models import load_causal_lm
    from lessismore.train.select import judge_scorer

    lima = {
        "max_new_tokens": decoding.max_new_tokens,
        "top_p": decoding.top_p,
        "temperature": decoding.temperature,
        "repetition_penalty": decoding.repetition_penalty,
        "seed": seed,
        "batch_size": decoding.batch_size,
    }

    def answers_of(candidate: Mapping[str, Any]) -> TransformersBackend:
        return TransformersBackend(*load_causal_lm(candidate["path"]), **lima)

    reference = [r.text for r in answers_of({"path": base_dir}).generate(list(prompts))]
    backend, run = open_judge(spec, {"base": base_dir}, seed, section="train.select_judge")
    judge = dev_judge(backend, load_template(spec.template), run, reference, KeyedCache(cache_path))
    return judge_scorer(prompts, judge, answers_of)
