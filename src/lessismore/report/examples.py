"""The report's side-by-side answers: the clearest wins and losses of the headline judge, with its replies.

Sits under report/build.py, over records.py types and judge/outcome.py. A win or a loss already means both answer
orders agreed; among those, the clearest is the one the judge was surest of: the summed margin between its top
and second option scores over both orders (logprobs mode; generate mode keeps no scores, so its pairs rank by
prompt id). Ties fill the rest when there are too few wins and losses.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from lessismore.judge.outcome import pair_outcomes
from lessismore.records import Judgment, Prompt, Response

_SCORE = re.compile(r"\b([A-Z])=(-?(?:\d+(?:\.\d*)?|inf|nan))")


def margin(judgment: Judgment) -> float:
    """How sure a logprobs-mode verdict was: top option score minus the second (calibrated scores when kept).

    >>> margin(Judgment("p", "j", "t", "ab", "r1", "r2", "ft", "base", "a", raw="A=-0.1000 B=-2.0000 C=-3.0000"))
    1.9
    >>> margin(Judgment("p", "j", "t", "ab", "r1", "r2", "ft", "base", "a", raw="[[A]] because it is clearer"))
    0.0
    """
    text = judgment.meta.get("calibrated") or judgment.raw
    scores = sorted((float(v) for _, v in _SCORE.findall(text)), reverse=True)
    if len(scores) < 2 or not all(math.isfinite(s) for s in scores[:2]):
        return 0.0
    return round(scores[0] - scores[1], 6)


def chosen(j: Judgment) -> str:
    """A single verdict in words: which model the judge preferred.

    >>> chosen(Judgment("p", "j", "t", "ba", "r1", "r2", "base", "ft", "b"))
    'ft'
    """
    return {"a": j.model_a, "b": j.model_b, "tie": "neither", "invalid": "unreadable"}.get(j.verdict, j.verdict)


def pick_examples(
    judgments: Sequence[Judgment], responses: Sequence[Response], prompts: Sequence[Prompt], candidate: str, k: int = 4
) -> list[dict[str, Any]]:
    """Up to `k` pairs: the clearest wins and losses, alternating (half each when both exist), then ties."""
    texts = {p.id: p.text for p in prompts}
    by_id, by_judgment = {r.id: r for r in responses}, {j.id: j for j in judgments}
    outcomes = [o for o in pair_outcomes(judgments, candidate) if o.prompt_id in texts]

    def ranked(kind: str) -> list[tuple[float, Any]]:
        scored = [(sum(margin(by_judgment[i]) for i in o.ids), o) for o in outcomes if o.outcome == kind]
        return sorted(scored, key=lambda t: (-t[0], t[1].prompt_id, t[1].baseline))

    wins, losses, ties = ranked("win"), ranked("loss"), ranked("tie")
    n_wins = min(len(wins), max(k // 2, k - len(losses)))
    wins, losses = wins[:n_wins], losses[: k - n_wins]
    alternate = [p for pair in zip(wins, losses, strict=False) for p in pair]  # clearest win, clearest loss, ...
    rest = wins[len(losses) :] + losses[len(wins) :]
    picked = (alternate + rest + ties)[:k]
    out = []
    for score, o in picked:
        js = {by_judgment[i].order: by_judgment[i] for i in o.ids}
        one = js.get("ab") or js["ba"]
        cand_id, base_id = (one.response_a, one.response_b) if one.order == "ab" else (one.response_b, one.response_a)
        out.append(
            {
                "prompt": texts[o.prompt_id],
                "baseline": o.baseline,
                "outcome": o.outcome,
                "margin": score,
                "candidate_text": by_id[cand_id].text if cand_id in by_id else "(response not found)",
                "baseline_text": by_id[base_id].text if base_id in by_id else "(response not found)",
                "verdicts": [
                    {"order": j.order, "chose": chosen(j), "raw": j.raw, "margin": margin(j)}
                    for _, j in sorted(js.items())
                ],
            }
        )
    return out
