"""Pairing, order swapping and aggregation: the judge stage's core, independent of any backend.

Sits between generate/ (Responses) and judge/stats.py. Each candidate answer is paired with each baseline's answer
to the same prompt and judged twice: order "ab" shows the candidate as A, order "ba" shows it as B. A pair is a
win only when both orders prefer the candidate, a loss when both prefer the baseline, a tie (LIMA's "neither is
significantly better") for any other readable combination, and "invalid" if either order could not be read.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from lessismore.judge import Template, render_fitted
from lessismore.judge.parse import GRADE_OPTIONS, PAIRWISE_OPTIONS, choose, format_scores, parse_grade, parse_pairwise
from lessismore.records import Judgment, Prompt, Rating, Response

Outcome = Literal["win", "tie", "loss", "invalid"]
OUTCOMES: tuple[str, ...] = ("win", "tie", "loss", "invalid")


@dataclass(frozen=True)
class Reply:
    """What a backend answered: free text (generate mode) or option log-probabilities (logprobs mode)."""

    text: str = ""
    scores: dict[str, float] | None = None


class Backend(Protocol):
    max_input_tokens: int  # the longest user message (in tokens) the backend accepts

    def count_tokens(self, text: str) -> int: ...

    def ask(self, messages: Sequence[str], options: Sequence[str]) -> list[Reply]: ...


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


def _verdict(reply: Reply, options: Mapping[str, str], parser: Callable[[str], str]) -> tuple[str, str, dict]:
    if reply.scores is not None:
        mass = sum(math.exp(v) for v in reply.scores.values())  # probability spent on allowed letters at all
        return choose(reply.scores, options), format_scores(reply.scores), {"option_mass": round(mass, 6)}
    return parser(reply.text), reply.text, {}


def _ask_all(
    backend: Backend,
    messages: list[str],
    options: Sequence[str],
    batch_size: int,
    progress: Callable[[int], None] | None,
) -> list[Reply]:
    # Similar lengths batch together (less padding); replies go back to the original order.
    order = sorted(range(len(messages)), key=lambda i: len(messages[i]))
    replies: list[Reply | None] = [None] * len(messages)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        for i, reply in zip(chunk, backend.ask([messages[i] for i in chunk], options), strict=True):
            replies[i] = reply
        if progress:
            progress(len(chunk))
    return replies  # type: ignore[return-value]


def judge_pairs(
    pairs: Sequence[Pair],
    backend: Backend,
    template: Template,
    judge: str,
    batch_size: int = 4,
    progress: Callable[[int], None] | None = None,
) -> list[Judgment]:
    """Judge every pair in both orders; returns 2 Judgments per pair, "ab" then "ba"."""
    jobs, messages = [], []
    for pair in pairs:
        for order, first, second in (("ab", pair.candidate, pair.baseline), ("ba", pair.baseline, pair.candidate)):
            fields = {"prompt": pair.prompt.text, "answer_a": first.text, "answer_b": second.text}
            message, truncated = render_fitted(template, fields, backend.count_tokens, backend.max_input_tokens)
            jobs.append((pair, order, first, second, truncated))
            messages.append(message)
    replies = _ask_all(backend, messages, list(PAIRWISE_OPTIONS), batch_size, progress)
    out = []
    for (pair, order, first, second, truncated), reply in zip(jobs, replies, strict=True):
        verdict, raw, meta = _verdict(reply, PAIRWISE_OPTIONS, parse_pairwise)
        out.append(
            Judgment(
                prompt_id=pair.prompt.id,
                judge=judge,
                template=template.sha,
                order=order,
                response_a=first.id,
                response_b=second.id,
                model_a=first.model,
                model_b=second.model,
                verdict=verdict,
                raw=raw,
                meta={"truncated": truncated, **meta},
            )
        )
    return out


def rate_responses(
    items: Sequence[tuple[Prompt, Response]],
    backend: Backend,
    template: Template,
    judge: str,
    batch_size: int = 4,
    progress: Callable[[int], None] | None = None,
) -> list[Rating]:
    """Absolute grades (LIMA Figure 3: excellent / pass / fail), one Rating per response."""
    fitted = [
        render_fitted(template, {"prompt": p.text, "answer": r.text}, backend.count_tokens, backend.max_input_tokens)
        for p, r in items
    ]
    replies = _ask_all(backend, [m for m, _ in fitted], list(GRADE_OPTIONS), batch_size, progress)
    out = []
    for (prompt, response), (_, truncated), reply in zip(items, fitted, replies, strict=True):
        grade, raw, meta = _verdict(reply, GRADE_OPTIONS, parse_grade)
        out.append(
            Rating(
                prompt_id=prompt.id,
                response=response.id,
                model=response.model,
                judge=judge,
                template=template.sha,
                grade=grade,
                raw=raw,
                meta={"truncated": truncated, **meta},
            )
        )
    return out


# ----------------------------------------------------------------------------------------------------------------
# aggregation: two single verdicts -> one pair outcome, from the candidate's point of view


def candidate_view(order: str, verdict: str) -> int | None:
    """+1 the candidate was preferred, -1 the baseline was, 0 neither, None unreadable.

    >>> [candidate_view(o, v) for o, v in [("ab", "a"), ("ba", "a"), ("ba", "tie"), ("ab", "invalid")]]
    [1, -1, 0, None]
    """
    if verdict == "tie":
        return 0
    if verdict not in ("a", "b"):
        return None
    shown_as = "a" if order == "ab" else "b"
    return 1 if verdict == shown_as else -1


def pair_outcome(verdict_ab: str, verdict_ba: str) -> Outcome:
    """Both orders favour the candidate: win; both the baseline: loss; any readable rest: tie; else invalid.

    >>> pair_outcome("a", "b"), pair_outcome("b", "a"), pair_outcome("a", "a"), pair_outcome("tie", "b")
    ('win', 'loss', 'tie', 'tie')
    """
    views = (candidate_view("ab", verdict_ab), candidate_view("ba", verdict_ba))
    if None in views:
        return "invalid"
    return "win" if views == (1, 1) else "loss" if views == (-1, -1) else "tie"


@dataclass(frozen=True)
class PairOutcome:
    prompt_id: str
    baseline: str
    outcome: Outcome
    verdict_ab: str  # the single verdict with the candidate shown first ("missing" if that order was never judged)
    verdict_ba: str
    candidate_chars: int = 0  # answer lengths in characters, for the length-bias check (0: unknown)
    baseline_chars: int = 0
    ids: tuple[str, ...] = field(default=(), compare=False)  # the Judgment ids behind this outcome


def pair_outcomes(
    judgments: Iterable[Judgment], candidate: str, lengths: Mapping[str, int] | None = None
) -> list[PairOutcome]:
    """Group single Judgments into pairs (prompt, baseline); a pair missing an order is "invalid" but still counted."""
    lengths = lengths or {}
    groups: dict[tuple[str, str], dict[str, Judgment]] = {}
    for j in judgments:
        baseline = j.model_b if j.order == "ab" else j.model_a
        if candidate not in (j.model_a, j.model_b):
            raise ValueError(f"judgment {j.id} compares {j.model_a} and {j.model_b}, not candidate {candidate!r}")
        groups.setdefault((j.prompt_id, baseline), {})[j.order] = j
    out = []
    for (prompt_id, baseline), by_order in sorted(groups.items()):
        ab, ba = by_order.get("ab"), by_order.get("ba")
        v_ab, v_ba = (ab.verdict if ab else "missing"), (ba.verdict if ba else "missing")
        any_j = ab or ba
        cand_id = any_j.response_a if any_j.order == "ab" else any_j.response_b
        base_id = any_j.response_b if any_j.order == "ab" else any_j.response_a
        out.append(
            PairOutcome(
                prompt_id,
                baseline,
                pair_outcome(v_ab, v_ba),
                v_ab,
                v_ba,
                lengths.get(cand_id, 0),
                lengths.get(base_id, 0),
                tuple(j.id for j in by_order.values()),
            )
        )
    return out
