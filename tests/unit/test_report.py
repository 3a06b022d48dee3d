"""The HTML report: every section renders from rich inputs, is left out (or says "not run") without them, fetches
nothing, and escapes untrusted model text and labels. `rich_inputs` is shared with the browser test."""

from __future__ import annotations

import re
import time
from dataclasses import replace
from typing import Any

import pytest

from lessismore.judge.stats import GRADES, share_block, summarise
from lessismore.records import Judgment, Origin, Prompt, Response
from lessismore.report.build import build_report, count_rows, trust_sentence

EVIL = '<script>alert("pwned")</script><img src="https://evil.example/x.png">'
CHARTS = ("outcomes", "grades", "funnel", "sources", "training", "ablation", "timings")


def _judgments(n: int = 6) -> tuple[list[Prompt], list[Response], list[Judgment]]:
    """n prompts: wins and losses with growing score margins, plus ties; one baseline answer is an XSS attempt."""
    origin = Origin("test_prompts", "data/sources/prompts/test.jsonl", "0")
    prompts = [
        Prompt(text=f"Question {i}: how do I <b>fix</b> thing {i}?", split="test", origin=origin) for i in range(n)
    ]
    responses, judgments = [], []
    for i, p in enumerate(prompts):
        cand = Response(prompt_id=p.id, model="finetuned", checkpoint="c1", text=f"Tuned answer {i}.", decoding={})
        base = Response(
            prompt_id=p.id, model="base", checkpoint="c0", text=EVIL if i == 1 else f"Base {i}.", decoding={}
        )
        responses += [cand, base]
        kind, gap = ("win", "loss", "tie")[i % 3], 0.2 + i  # a bigger gap: a clearer verdict
        for order, (ra, rb, ma, mb) in (
            ("ab", (cand.id, base.id, "finetuned", "base")),
            ("ba", (base.id, cand.id, "base", "finetuned")),
        ):
            cand_letter = "a" if order == "ab" else "b"
            verdict = {"win": cand_letter, "loss": "b" if cand_letter == "a" else "a", "tie": "a"}[kind]
            scores = (
                {"A": -0.1, "B": -0.1 - gap, "C": -3.0} if verdict == "a" else {"A": -0.1 - gap, "B": -0.1, "C": -3.0}
            )
            raw = " ".join(f"{k}={v:.4f}" for k, v in scores.items())
            judgments.append(Judgment(p.id, "gpt-judge", "t", order, ra, rb, ma, mb, verdict, raw=raw))
    return prompts, responses, judgments


def _judge_metrics(candidate: str = "finetuned") -> dict[str, Any]:
    base = summarise(["win"] * 14 + ["tie"] * 12 + ["loss"] * 10 + ["invalid"], seed=0)
    other = summarise(["win"] * 8 + ["tie"] * 10 + ["loss"] * 18, seed=1)
    grades = {
        m: share_block(["excellent"] * e + ["pass"] * 20 + ["fail"] * (16 - e), GRADES, seed=2)
        for m, e in (("base", 4), (candidate, 9), ("alpaca", 6))
    }
    cost = {
        "calls": 150,
        "cached": 30,
        "prompt_tokens": 91234,
        "completion_tokens": 1500,
        "cost_usd": 0.42,
        "seconds": 81.5,
    }
    agree = {"n": 36, "tie_discounted": 0.71, "kappa": 0.42, "shared": 36}
    return {
        "candidate": candidate,
        "primary": "gpt-judge",
        "baselines": {"base": base, "alpaca": other},
        "grades": grades,
        "ratings": {
            candidate: {"rating": 1043.0, "ci": [990.0, 1101.0], "games": 72},
            "base": {"rating": 1000.0, "ci": [1000.0, 1000.0], "games": 36},
        },
        "reliability": {
            "position_consistency": 0.81,
            "first_position_preference": 0.55,
            "invalid_rate": 0.01,
            "length_bias": 0.6,
            "option_mass": 0.97,
            "valid_pairs": 36,
            "inconsistent_pairs": 7,
        },
        "injection": {"pairs": 4, "movable": 4, "moved": 1, "moved_rate": 0.25, "single_verdicts_changed": 2},
        "judges": {
            "gpt-judge": {
                "backend": "openai",
                "mode": "logprobs",
                "model": "gpt-4o",
                "calibrate": False,
                "fingerprint": "f00dfeed",
                "template": "abc123",
                "cost": cost,
            },
            "local-judge": {
                "backend": "local",
                "mode": "generate",
                "model": "base",
                "cost": {**cost, "cost_usd": 0.0},
            },
        },
        "agreement": {"gpt-judge~local-judge": agree},
        "humans": {
            "annotators": ["ann", "bob"],
            "judgments": 40,
            "baselines": {"base": base},
            "grades": {},
            "agreement": {"human:ann~gpt-judge": agree},
        },
        "seconds": 82.0,
    }


def rich_inputs(evil_labels: bool = False) -> dict[str, Any]:
    """build_report keyword arguments with data for every section and chart (names made hostile on request)."""
    cand, src, variant = ("ft" + EVIL, "se" + EVIL, "lima" + EVIL) if evil_labels else ("finetuned", "se_stem", "lima")
    prompts, responses, judgments = _judgments()
    per = {src: 40, "wikihow": 32, "handwritten": 42}
    funnel = [
        {"step": s, "n": sum(per.values()) - k * 9, "per_source": {n: v - 3 * k for n, v in per.items()}}
        for k, s in enumerate(["validated", "filters", "dedup", "decontam", "near_dup", "selected"])
    ]
    ckpts = [
        {"step": 8 * e, "epoch": e, "epoch_end": True, "path": f"models/checkpoints/epoch-{e:03d}"}
        for e in range(1, 7)
    ]
    scores = [None, None, 0.41, 0.47, 0.44, 0.39]
    selection = {
        "mode": "judge",
        "select_epochs": [3, 4, 5, 6],
        "chosen_epoch": 4,
        "chosen_path": ckpts[3]["path"],
        "reason": "mode judge: epoch 4 has the highest score, 0.47, of 4 candidates",
        "candidates": [
            {
                "epoch": c["epoch"],
                "path": c["path"],
                "candidate": c["epoch"] >= 3,
                "score": s,
                "diverged": False,
                "chosen": c["epoch"] == 4,
            }
            for c, s in zip(ckpts, scores, strict=True)
        ],
    }
    steps = [
        {
            "step": i,
            "epoch": i / 8,
            "loss": 2.6 * 0.97**i + 0.05 * (i % 3),
            "lr": 1e-5 - 9e-6 * i / 48,
            "tokens_per_s": 900 + 10 * (i % 5),
            "peak_mem_mb": 2100 + i,
        }
        for i in range(1, 49)
    ]
    ablation = {
        "baseline": "base",
        "judge": "gpt-judge",
        "metric": "win",
        "points": [
            {
                "exp": f"exp-{v}-{n}",
                "rev": f"{n:040x}",
                "variant": v,
                "budget": n,
                "n": 36,
                "win": w,
                "ci": {"win": [w - 0.1, w + 0.1]},
                "prefect_run": None,
            }
            for v, off in ((variant, 0.0), ("random", -0.08))
            for n, w in ((250, 0.3), (500, 0.38), (1000, 0.45), (2000, 0.46))
            for w in [w + off]
        ],
    }
    artifacts = [
        {"what": w, "stage": s, "path": p, "md5": f"{i}{'ab' * 16}"[:32] + ".dir", "size": 1000 * i, "nfiles": 2}
        for i, (w, s, p) in enumerate(
            [
                ("curated data", "curate", "data/curated"),
                ("base model", "model", "models/base"),
                ("checkpoint", "train", "models/finetuned"),
                ("responses", "judge", "outputs/responses"),
                ("judgments", "judge", "outputs/judgments.jsonl"),
                ("ratings", "judge", "outputs/ratings.jsonl"),
            ],
            start=1,
        )
    ]
    lineage = {
        "artifacts": artifacts,
        "git": {"commit": "deadbeef" * 5, "dirty": True},
        "stages": ["curate", "generate@base", "generate@finetuned", "judge", "train"],
        "params": {
            "train": {"train.lr": 1e-05, "train.lora_targets": ["q_proj", "v_proj"]},
            "judge": {"judge.judges": [{"name": "gpt-judge", "backend": "openai"}] * 3},
            "curate": {"curate.budget": 96},
        },
    }
    judge = _judge_metrics(cand)
    rename = {"finetuned": cand}
    judgments = [
        replace(j, model_a=rename.get(j.model_a, j.model_a), model_b=rename.get(j.model_b, j.model_b), id="")
        for j in judgments
    ]
    responses = [replace(r, model=rename.get(r.model, r.model)) for r in responses]
    stage_metrics = {
        "ingest": {"counts": {"examples": 146, "prompts": 48, "dropped": 7}, "seconds": 0.4},
        "validate": {
            "counts": {"examples": 143, "prompts": 48},
            "eval": {"dev": {"prompts": 12, "dropped": 0}, "test": {"prompts": 35, "dropped": 1}},
        },
        "curate": {
            "counts": {"candidates": 114, "selected": 96, "dropped": 18},
            "variant": variant,
            "funnel": funnel,
            "per_source": {n: {"candidates": v, "selected": v - 15} for n, v in per.items()},
            "dropped_by_reason": {"low_score": 10, "over_quota": 8},
            "budget_shortfall": {
                "budget": 100,
                "selected": 96,
                "short_by": 4,
                "sources": {"se": {"quota": 30, "selected": 26, "short_by": 4, "reasons": {"low_score": 10}}},
            },
            "seconds": 1.8,
        },
        "train": {
            "counts": {"examples": 96},
            "steps": 48,
            "epochs": 6,
            "final_loss": 1.6,
            "method": "lora",
            "tokens_per_s": 910.0,
            "checkpoints": ckpts,
            "selection": selection,
            "seconds": 372.3,
        },
        "generate": {"counts": {"responses": 72}, "seconds": {cand: 65.8, "base": 66.5}},
        "judge": judge,
    }
    return dict(
        title="Demo <report>",
        experiment="exp-1",
        judge_metrics=judge,
        stage_metrics=stage_metrics,
        judgments=judgments,
        responses=responses,
        prompts=prompts,
        lineage=lineage,
        train_steps=steps,
        ablation=ablation,
        notes=["logs/train_steps.csv line 9: could not convert 'x' to float"],
    )


@pytest.fixture(scope="module")
def html() -> str:
    start = time.perf_counter()
    page = build_report(**rich_inputs())
    print(f"rich report built in {time.perf_counter() - start:.2f} s")  # includes vl-convert's start (~0.4 s)
    return page


def test_every_section_and_chart_renders(html):
    for anchor in (
        "results",
        "provenance",
        "reliability",
        "humans",
        "ablation",
        "examples",
        "data",
        "training",
        "lineage",
        "params-train",
    ):
        assert f'id="{anchor}"' in html, anchor
    charts = re.findall(r"<svg\b.*?</svg>", html, re.S)
    assert len(charts) == len(CHARTS)
    assert all(len(re.findall(r"<(path|rect|line)\b", svg)) >= 3 for svg in charts)
    for label in (
        "win, tie and loss",
        "absolute grades",
        "curation funnel",
        "source mix",
        "training curves",
        "quality against training-set size",
        "seconds per stage",
    ):
        assert f'aria-label="{label}' in html, label
    assert "Bradley–Terry" in html and "Agreement between judges" in html and "Verdict injection" in html
    assert "Checkpoint selection" in html and "mode judge: epoch 4 has the highest score" in html
    assert "Problems met while building this page" in html and "line 9" in html
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert len(ids) == len(set(ids))  # charts never share a clip path or gradient id


def test_page_fetches_nothing(html):
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.IGNORECASE)
    assert "<script" not in html.lower() and "<link" not in html.lower() and "@import" not in html
    assert not re.search(r"https?://", html.replace("https://evil.example", ""))  # only the escaped model text


def test_sections_carry_the_numbers_and_their_lineage(html):
    assert "39%</b> wins" in html and "over 36 pairs" in html and "1 unreadable pair" in html
    assert "agreed with itself when the order of the two answers was swapped on 81% of 36 pairs" in html
    prov = html[html.index('id="provenance"') : html.index("Pairwise preference")]
    assert "5abababa" in prov and "3abababa" in prov and "6abababa" in prov and "deadbeef" in prov  # short md5s
    assert "uncommitted changes" in prov and 'href="#params-judge"' in prov
    assert 'href="#params-generate@finetuned"' in prov and 'href="#params-generate@base"' in prov  # each instance
    assert "5" + "ab" * 15 + "a.dir" in html and "train.lr" in html and "$0.4200" in html and "91,234" in html


def test_an_under_filled_selection_and_the_eval_counts_are_stated(html):
    short = html[html.index('id="shortfall"') :][:600]
    assert "96 selected of\nthe budget 100 (short by 4)" in short and "<code>se</code>: 26 of its quota\n30" in short
    assert "<code>low_score</code> 10" in short
    sets = html[html.index('id="eval-sets"') :][:400]
    assert "dev\n<b>12</b> prompts" in sets and "test\n<b>35</b> prompts (1 removed" in sets


def test_side_by_side_shows_the_clearest_win_and_loss_first(html):
    shown = re.findall(r'<h3 class="prompt">Question (\d)', html)
    assert shown[:2] == ["3", "4"]  # the widest-margin win (prompt 3) and loss (prompt 4)
    assert "A=-0.1000 B=-3.3000 C=-3.0000" in html


def test_untrusted_text_and_labels_are_escaped():
    page = build_report(**rich_inputs(evil_labels=True))
    assert "<script" not in page.lower() and "<img" not in page.lower()
    assert page.count("&lt;script&gt;") >= 5  # answer, model, source and variant names in text and charts
    assert "Demo &lt;report&gt;" in page and "&lt;b&gt;fix&lt;/b&gt;" in page


def test_missing_inputs_say_not_run_and_draw_nothing():
    page = build_report(title="t", experiment="e", judge_metrics={}, stage_metrics={})
    assert "<svg" not in page and page.count("Not run") >= 4 and "No judged pairs" in page
    assert "no git commit" in page and 'id="ablation"' not in page and "not run (no metrics)" in page
    only_curate = rich_inputs()["stage_metrics"]["curate"]
    page = build_report(
        title="t", experiment="e", judge_metrics={}, stage_metrics={"curate": only_curate}, ablation={"points": []}
    )
    assert page.count("<svg") == 3 and "curation funnel" in page  # and the source mix and the timings
    assert 'id="ablation"' not in page


def test_trust_sentence_scales_with_consistency():
    assert "noise" in trust_sentence({"position_consistency": 0.3, "valid_pairs": 5})
    assert "weak signal" in trust_sentence({"position_consistency": 0.6, "valid_pairs": 5})
    assert "say nothing" in trust_sentence({"position_consistency": None, "valid_pairs": 0})


def test_count_rows_lists_every_stage():
    rows = count_rows({"ingest": {"counts": {"examples": 3, "note": "x"}}})
    assert rows[0] == {"stage": "ingest", "counts": {"examples": 3}}
    assert [r["stage"] for r in rows[1:]] == ["validate", "curate", "train", "generate", "judge"]
    assert all(r["counts"] is None for r in rows[1:])


def test_selection_by_scores_shows_distributions_extremes_and_diversity():
    """A scored curate run: the score histograms per source and kind, the best and worst scored with their scores,
    and the diversity against random; untrusted prompt text stays escaped."""
    import numpy as np

    from lessismore.curate.scored import summarise
    from lessismore.records import Example, Message
    from tests.specs import curate_spec

    examples = [
        Example(
            (Message("user", EVIL if i == 3 else f"Prompt {i}"), Message("assistant", f"Answer {i}")),
            Origin("se" if i % 2 else "wiki", "f.jsonl", str(i)),
        )
        for i in range(10)
    ]
    values = {"quality": [1.0 + i / 2 for i in range(10)], "ifd": [0.5 + i / 30 for i in range(10)]}
    total = np.array([q + f for q, f in zip(values["quality"], values["ifd"], strict=True)])
    taken = total > 4.0
    spec = curate_spec().scores
    scores = summarise(examples, values, total, taken, {"quality": 1.0, "ifd": 1.0}, spec, np.zeros(10, bool))
    curate = {
        "counts": {"candidates": 10, "selected": int(taken.sum()), "dropped": int((~taken).sum())},
        "variant": "scored",
        "scores": scores,
        "diversity": {
            "selected": {"mean_nearest": 0.61, "mean_pairwise": 0.8},
            "random": {"mean_nearest": 0.42, "mean_pairwise": 0.7},
        },
    }
    page = build_report(title="t", experiment="e", judge_metrics={}, stage_metrics={"curate": curate})
    assert 'id="scores"' in page and "scores of the candidates and of the selected" in page
    assert page.count("<svg") == 1  # the score histograms (no funnel, no timings in these metrics)
    assert "0.610 against" in page and "0.420" in page  # diversity: selected against random
    assert "Prompt 9" in page and "quality 5.5" in page  # the best scored of its source, with its scores
    assert "<script" not in page.lower() and "&lt;script&gt;" in page


def test_the_headline_shows_the_soft_win_rate_and_says_which_rate_to_read():
    judge = _judge_metrics()
    all_ties = summarise(["tie"] * 36, seed=0)
    soft = {"n": 36, "invalid": 0, "win_rate": 0.6123, "se": 0.021, "ci": [0.571, 0.652]}
    lc = {"length_controlled_winrate": 55.25, "lc_standard_error": 3.4}
    judge["baselines"] = {"base": all_ties | {"soft": soft, "length_controlled": lc}}
    page = build_report(title="t", experiment="e", judge_metrics=judge, stage_metrics={})
    assert "soft win rate <b" in page and "61%" in page and "57%–65%" in page and "2.1 points" in page
    assert 'length-controlled\n<b class="win">55.2%</b>' in page and "standard error 3.4 points" in page
    assert 'id="which-rate"' in page and "Read the soft win rate" in page
    judge["style_control"] = {
        "n": 36,
        "ratings": {
            "finetuned": {"rating": 1012.0, "ci": [950.0, 1080.0]},
            "base": {"rating": 1000.0, "ci": [1000.0, 1000.0]},
        },
        "style": {"length": {"coef": 0.61, "ci": [0.2, 1.1]}, "bold": {"coef": -0.05, "ci": [-0.4, 0.3]}},
    }
    page = build_report(title="t", experiment="e", judge_metrics=judge, stage_metrics={})
    assert "<th>style-controlled</th>" in page and ">1012<" in page and "950–1080" in page
    assert 'id="style-control"' in page and "<code>length</code> +0.61" in page
