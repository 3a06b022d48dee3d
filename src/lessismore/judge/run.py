"""The judge stage's work, from params' judge section: every judge judges every pair (both orders), the planted
injection twins and every answer's grade, through one verdict cache; then metrics/judge.json is assembled.

The stage script only reads inputs, calls `judge_all` and writes what it returns.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lessismore import records
from lessismore.judge import load_template
from lessismore.judge.cache import KeyedCache
from lessismore.judge.factory import open_judge
from lessismore.judge.injection import plant
from lessismore.judge.panel import panel_summary
from lessismore.judge.protocol import RunStats, build_pairs, judge_pairs, rate_responses
from lessismore.judge.summary import agreement_between, human_summary, judge_labels, judge_summary

if TYPE_CHECKING:
    from lessismore.config import Judge, JudgeSpec


@dataclass(frozen=True)
class JudgeOutput:
    judgments: list[records.Judgment]  # every judge's pairwise verdicts, both orders
    ratings: list[records.Rating]  # every judge's absolute grades
    injected: list[records.Judgment]  # the planted twins' verdicts
    metrics: dict[str, Any]  # metrics/judge.json
    timing: dict[str, Any]  # metrics/timing/judge.json: seconds in all, each judge's cost, the cache's state


def judge_all(
    spec: Judge,
    prompts: Mapping[str, records.Prompt],
    responses: Sequence[records.Response],
    *,
    model_dirs: Mapping[str, Path],
    cache_path: Path,
    humans: list[dict[str, Any]],
    seed: int,
) -> JudgeOutput:
    """Judge the candidate against each baseline on the test `prompts` (id -> Prompt) with every judge of `spec`.

    `responses` are the candidate's and the baselines' answers (to anything: answers to other prompts are counted
    and left out); `humans` the rows of `lessismore annotate --export` (empty: nobody judged yet).
    """
    tested = [r for r in responses if r.prompt_id in prompts]  # answers to anything else are not this stage's test
    pairs, unpaired = build_pairs(prompts.values(), tested, spec.candidate, spec.baselines)
    planted = plant(pairs, spec.injection.pairs, seed=seed)
    items = [(prompts[r.prompt_id], r) for r in sorted(tested, key=lambda r: (r.model, r.prompt_id))]
    texts = {r.id: r.text for r in tested}  # for the answers' lengths and style
    started = time.perf_counter()
    judgments, ratings, injected, blocks = [], [], [], {}
    with KeyedCache(cache_path) as cache:
        for i, judge in enumerate(spec.judges):
            mine, grades, twins, block = _one_judge(
                judge, f"judge.judges[{i}]", pairs, planted, items, cache, model_dirs, seed
            )
            block |= judge_summary(
                mine,
                grades,
                twins,
                [name for _, _, name in planted],
                candidate=spec.candidate,
                baselines=spec.baselines,
                texts=texts,
                n_resamples=spec.bootstrap,
                base_seed=seed,
                strong_weight=spec.strong_weight,
            )
            if block["levels"] == 5:  # what its strong verdicts weighed in the soft win rate
                block["strong_weight"] = spec.strong_weight
            blocks[judge.name] = block
            judgments += mine
            ratings += grades
            injected += twins
        cache_info = {"rows": len(cache), "unreadable_lines": cache.unreadable}
    head = blocks[spec.primary]
    metrics = {
        "candidate": spec.candidate,
        "primary": spec.primary,
        **{key: head[key] for key in ("baselines", "ratings", "reliability", "grades", "injection")},
        "judges": blocks,
        "agreement": agreement_between(judgments, spec.candidate),
        "counts": {
            "judgments": len(judgments),
            "pairs": len(pairs),
            "ratings": len(ratings),
            "injected": len(injected),
            "judges": len(blocks),
        },
        "unpaired": unpaired,
        "not_test_responses": len(responses) - len(tested),
        "truncated": sum(bool(x.meta.get("truncated")) for x in [*judgments, *ratings]),
        "humans": _humans(humans, judgments, spec, seed),
    }
    if spec.panel.judges:  # several judges read as one, beside the primary
        metrics["panel"] = panel_summary(
            judgments,
            spec.panel.judges,
            spec.panel.combine,
            candidate=spec.candidate,
            baselines=spec.baselines,
            lengths={rid: len(text) for rid, text in texts.items()},
            n_resamples=spec.bootstrap,
            base_seed=seed,
            strong_weight=spec.strong_weight,
        )
    # what this run did (calls made or served from the cache, their tokens and price, the cache's state) depends on
    # what earlier runs left in the cache, not on the verdicts: it goes to the timing file with the seconds
    per_judge = {name: block.pop("cost") for name, block in blocks.items()}
    timing = {"seconds": round(time.perf_counter() - started, 1), "judges": per_judge, "cache": cache_info}
    return JudgeOutput(judgments, ratings, injected, metrics, timing)


def _one_judge(
    judge: JudgeSpec,
    key: str,
    pairs: list,
    planted: list,
    items: list,
    cache: KeyedCache,
    model_dirs: Mapping[str, Path],
    seed: int,
) -> tuple[list, list, list, dict[str, Any]]:
    """One judge's verdicts on the pairs and the injection twins, its grades, and its identity and cost."""
    backend, run = open_judge(judge, model_dirs, seed, section=key)
    pairwise = load_template(judge.template)
    mine, cost = judge_pairs(pairs, backend, pairwise, run, cache, desc=f"judge {judge.name}: pairs")
    twins, c2 = judge_pairs(
        [t for _, t, _ in planted], backend, pairwise, run, cache, desc=f"judge {judge.name}: injection"
    )
    grades, c3 = [], RunStats()
    if judge.absolute_template:
        absolute = load_template(judge.absolute_template)
        grades, c3 = rate_responses(items, backend, absolute, run, cache, desc=f"judge {judge.name}: grades")
    identity = {
        "backend": judge.backend,
        "model": judge.model,
        "mode": judge.mode,
        "calibrate": judge.calibrate,
        "fingerprint": run.fingerprint,
        "template": pairwise.sha,
        "levels": pairwise.levels,
        "cost": (cost + c2 + c3).as_dict(),
    }
    return mine, grades, twins, identity


def _humans(rows: list[dict[str, Any]], judgments: list, spec: Judge, seed: int) -> dict[str, Any] | None:
    """The people's block (their win / tie / loss, grades, agreement with each other and each judge), or None."""
    if not rows:
        return None
    labels = judge_labels(judgments, spec.candidate)
    return human_summary(rows, labels, baselines=spec.baselines, n_resamples=spec.bootstrap, base_seed=seed)


def print_summary(metrics: dict[str, Any], timing: dict[str, Any]) -> None:
    """The stage's closing lines: each judge's headline per baseline and what this run cost."""
    for name, block in metrics["judges"].items():
        for base, b in block["baselines"].items():
            shares = f"{b['counts']} over {b['n']} pairs ({b['invalid']} invalid)"
            print(f"judge {name}: {metrics['candidate']} vs {base}: {shares}")
        cost = timing["judges"][name]
        print(f"judge {name}: {cost['calls']} calls, {cost['cached']} from the cache, ${cost['cost_usd']:.4f}")
