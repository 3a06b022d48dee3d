"""Pairing, both orders, the verdict cache and the run: the judge stage's core, independent of any backend.

Sits between generate/ (Responses) and judge/outcome.py + judge/stats.py. Each candidate answer is paired with each
baseline's answer to the same prompt and judged twice: order "ab" shows the candidate as A, order "ba" shows it as B
(outcome.py turns the two verdicts into win / tie / loss). Every single call is keyed by content (cache.verdict_key):
what the cache already holds is not asked again, and each new reply is written the moment it arrives, so a re-run
with a warm cache makes zero calls and a crash loses nothing already judged. Sampling seeds derive from the same key.
With `calibrate` (logprobs mode), the option letters' log-probabilities on content-free inputs ("N/A", "", "[MASK]")
are subtracted before the argmax: contextual calibration (Zhao et al., 2021), which removes a judge's standing
preference for a letter (a small model's "always A") without touching what the content says.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any, Protocol

from lessismore.judge import Template, render_fitted
from lessismore.judge.cache import KeyedCache, seed_of, verdict_key
from lessismore.judge.parse import (
    FIVE_LEVELS,
    GRADE_OPTIONS,
    PAIRWISE_OPTIONS,
    choose,
    format_scores,
    parse_five,
    parse_grade,
    parse_pairwise,
)
from lessismore.records import Judgment, Prompt, Rating, Response

CONTENT_FREE = ("N/A", "", "[MASK]")  # Zhao et al. (2021): inputs that say nothing, to measure the letters' prior


@dataclass(frozen=True)
class Reply:
    """What a backend answered: free text (generate mode) or option log-probabilities (logprobs mode)."""

    text: str = ""
    scores: dict[str, float] | None = None
    usage: dict[str, int] = field(default_factory=dict)  # prompt_tokens / completion_tokens as the backend counted


class Backend(Protocol):
    max_input_tokens: int  # the longest user message (in tokens) the backend accepts

    def count_tokens(self, text: str) -> int: ...

    def ask_batches(
        self, messages: Sequence[str], options: Sequence[str], seeds: Sequence[int]
    ) -> Iterator[tuple[list[int], list[Reply]]]:
        """Yield (indices, replies) as each batch or request finishes; every index exactly once, in any order."""
        ...


@dataclass(frozen=True)
class JudgeRun:
    """Who judges and how: the name on records, the fingerprint hashed into every key, calibration and price."""

    name: str
    fingerprint: str  # content hash of what decides the verdicts: model and weights, mode, decoding, seed
    calibrate: bool = False
    price_in: float = 0.0  # US dollars per million prompt tokens
    price_out: float = 0.0  # ... per million completion tokens

    @property
    def key_prefix(self) -> str:
        return self.fingerprint + ("+calibrated" if self.calibrate else "")


@dataclass
class RunStats:
    """What a run cost: calls made, items served from the cache, tokens, dollars and seconds."""

    calls: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    seconds: float = 0.0

    def __add__(self, other: RunStats) -> RunStats:
        return RunStats(*(a + b for a, b in zip(asdict(self).values(), asdict(other).values(), strict=True)))

    def as_dict(self) -> dict[str, Any]:
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Pair:
    prompt: Prompt
    candidate: Response
    baseline: Response


def build_pairs(
    prompts: Iterable[Prompt], responses: Iterable[Response], candidate: str, baselines: Sequence[str]
) -> tuple[list[Pair], dict[str, int]]:
    """Candidate vs each baseline, matched by prompt_id; also how many prompts each baseline could not be paired on."""
    by_key = {(r.model, r.prompt_id): r for r in responses}
    pairs, unpaired = [], dict.fromkeys(baselines, 0)
    for prompt in sorted(prompts, key=lambda p: p.id):
        for baseline in baselines:
            cand, base = by_key.get((candidate, prompt.id)), by_key.get((baseline, prompt.id))
            if cand is None or base is None:
                unpaired[baseline] += 1
                continue
            pairs.append(Pair(prompt, cand, base))
    return pairs, unpaired


def _verdict(
    reply: Reply, options: Mapping[str, str], parser: Callable[[str], str], prior: Mapping[str, float] | None
) -> tuple[str, str, dict[str, Any]]:
    if reply.scores is None:
        return parser(reply.text), reply.text, {}
    mass = sum(math.exp(v) for v in reply.scores.values())  # probability spent on allowed letters at all
    meta: dict[str, Any] = {"option_mass": round(mass, 6)}
    scores = reply.scores
    if prior:
        scores = {k: v - prior.get(k, 0.0) for k, v in scores.items()}
        meta["calibrated"] = format_scores(scores)
    return choose(scores, options), format_scores(reply.scores), meta


@dataclass(frozen=True)
class _Job:
    key: str
    fields: dict[str, str]


def _run(
    jobs: Sequence[_Job],
    backend: Backend,
    template: Template,
    options: Mapping[str, str],
    parser: Callable[..., str],
    run: JudgeRun,
    cache: KeyedCache,
    desc: str | None,
) -> RunStats:
    """Ask the backend for every job whose key the cache lacks; each reply goes into the cache as it arrives."""
    from tqdm.auto import tqdm

    started, stats = time.perf_counter(), RunStats()
    prior = _prior(backend, template, options, run, cache, stats) if run.calibrate else None
    todo = list({j.key: j for j in jobs if j.key not in cache}.values())
    stats.cached = len({j.key for j in jobs}) - len(todo)
    fitted = [render_fitted(template, j.fields, backend.count_tokens, backend.max_input_tokens) for j in todo]
    order = sorted(range(len(todo)), key=lambda i: len(fitted[i][0]))  # similar lengths batch together
    messages, seeds = [fitted[i][0] for i in order], [seed_of(todo[i].key) for i in order]
    with tqdm(total=len(todo), desc=desc, unit="call", disable=desc is None or not todo) as bar:
        for idx, replies in backend.ask_batches(messages, list(options), seeds):
            rows = []
            for i, reply in zip(idx, replies, strict=True):
                job, (_, truncated) = todo[order[i]], fitted[order[i]]
                verdict, raw, meta = _verdict(
                    reply, options, partial(parser, echo_of=tuple(job.fields.values())), prior
                )
                rows.append(
                    {
                        "key": job.key,
                        "verdict": verdict,
                        "raw": raw,
                        "meta": {"truncated": truncated, **meta, **_cost(reply.usage, run, stats)},
                    }
                )
            cache.put(rows)
            stats.calls += len(rows)
            bar.update(len(rows))
    stats.seconds = time.perf_counter() - started
    return stats


def _cost(usage: Mapping[str, int], run: JudgeRun, stats: RunStats) -> dict[str, Any]:
    prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    cost = (prompt * run.price_in + completion * run.price_out) / 1e6
    stats.prompt_tokens += prompt
    stats.completion_tokens += completion
    stats.cost_usd += cost
    return {"usage": dict(usage), "cost_usd": round(cost, 8)} if usage else {}


def _prior(
    backend: Backend,
    template: Template,
    options: Mapping[str, str],
    run: JudgeRun,
    cache: KeyedCache,
    stats: RunStats,
) -> dict[str, float]:
    """The letters' mean log-probability over the content-free inputs (cached like any other call)."""
    keys = [verdict_key(run.fingerprint, template.sha, "prior", text, text, text) for text in CONTENT_FREE]
    todo = [i for i, k in enumerate(keys) if k not in cache]
    if todo:
        msgs = [template.render(**dict.fromkeys(template.fields(), CONTENT_FREE[i])) for i in todo]
        for idx, replies in backend.ask_batches(msgs, list(options), [seed_of(keys[i]) for i in todo]):
            for i, reply in zip(idx, replies, strict=True):
                if reply.scores is None:
                    raise ValueError(f"judge {run.name}: calibrate needs mode logprobs (the backend returned text)")
                cache.put(
                    [
                        {
                            "key": keys[todo[i]],
                            "verdict": "prior",
                            "raw": format_scores(reply.scores),
                            "meta": {"scores": reply.scores},
                        }
                    ]
                )
                stats.calls += 1
    rows = [cache.get(k)["meta"]["scores"] for k in keys]  # type: ignore[index]
    return {letter: sum(r[letter] for r in rows) / len(rows) for letter in options}


def judge_pairs(
    pairs: Sequence[Pair],
    backend: Backend,
    template: Template,
    run: JudgeRun,
    cache: KeyedCache | None = None,
    desc: str | None = None,
) -> tuple[list[Judgment], RunStats]:
    """Judge every pair in both orders; returns 2 Judgments per pair ("ab" then "ba") and what the run cost.

    A 5-level template (Template.levels) is read with parse.parse_five: the Judgment's verdict is its side (a, b,
    tie) and meta["level"] the label itself ("A>>B" ... "B>>A"; "invalid"), which outcome.py weighs.
    """
    five = template.levels == 5
    options, parser = ({k: k for k in FIVE_LEVELS}, parse_five) if five else (PAIRWISE_OPTIONS, parse_pairwise)
    cache = cache if cache is not None else KeyedCache(None)
    shown = []
    for pair in pairs:
        for order, first, second in (("ab", pair.candidate, pair.baseline), ("ba", pair.baseline, pair.candidate)):
            key = verdict_key(run.key_prefix, template.sha, order, pair.prompt.text, first.text, second.text)
            fields = {"prompt": pair.prompt.text, "answer_a": first.text, "answer_b": second.text}
            shown.append((_Job(key, fields), pair, order, first, second))
    stats = _run([s[0] for s in shown], backend, template, options, parser, run, cache, desc)
    out = []
    for job, pair, order, first, second in shown:
        row = cache.get(job.key)
        assert row is not None, "every job was judged or cached"
        verdict, meta = row["verdict"], row["meta"]
        if five:
            verdict, meta = FIVE_LEVELS.get(verdict, ("invalid", False))[0], {**meta, "level": verdict}
        out.append(
            Judgment(
                prompt_id=pair.prompt.id,
                judge=run.name,
                template=template.sha,
                order=order,
                response_a=first.id,
                response_b=second.id,
                model_a=first.model,
                model_b=second.model,
                verdict=verdict,
                raw=row["raw"],
                meta=meta,
                id=job.key,
            )
        )
    return out, stats


def rate_responses(
    items: Sequence[tuple[Prompt, Response]],
    backend: Backend,
    template: Template,
    run: JudgeRun,
    cache: KeyedCache | None = None,
    desc: str | None = None,
) -> tuple[list[Rating], RunStats]:
    """Absolute grades (LIMA Figure 3: excellent / pass / fail), one Rating per response, and what the run cost."""
    cache = cache if cache is not None else KeyedCache(None)
    jobs = [
        _Job(verdict_key(run.key_prefix, template.sha, "abs", p.text, r.text), {"prompt": p.text, "answer": r.text})
        for p, r in items
    ]
    stats = _run(jobs, backend, template, GRADE_OPTIONS, parse_grade, run, cache, desc)
    out = []
    for job, (prompt, response) in zip(jobs, items, strict=True):
        row = cache.get(job.key)
        assert row is not None, "every job was judged or cached"
        out.append(
            Rating(
                prompt_id=prompt.id,
                response=response.id,
                model=response.model,
                judge=run.name,
                template=template.sha,
                grade=row["verdict"],
                raw=row["raw"],
                meta=row["meta"],
                id=job.key,
            )
        )
    return out, stats
