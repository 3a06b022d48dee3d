"""The HTML report: self-contained (no URL to fetch), charts as inline SVG, untrusted model text escaped."""

from __future__ import annotations

import re

import pytest

from lessismore.judge.stats import summarise
from lessismore.records import Judgment, Origin, Prompt, Response
from lessismore.report import figures
from lessismore.report.build import build_report, count_rows, trust_sentence

EVIL = '<script>alert("pwned")</script><img src="https://evil.example/x.png">'


def _records():
    prompt = Prompt(text="How do I boil an egg? <b>quickly</b>", split="test", origin=Origin("t", "f", "1"))
    cand = Response(
        prompt_id=prompt.id, model="finetuned", checkpoint="c1", text="Boil it for 7 minutes.", decoding={}
    )
    base = Response(prompt_id=prompt.id, model="base", checkpoint="c0", text=EVIL, decoding={})
    common = {"prompt_id": prompt.id, "judge": "j", "template": "t"}
    judgments = [
        Judgment(**common, order="ab", response_a=cand.id, response_b=base.id, model_a="finetuned", model_b="base",
                 verdict="a", raw="A=-0.1 B=-2.0 C=-3.0"),
        Judgment(**common, order="ba", response_a=base.id, response_b=cand.id, model_a="base", model_b="finetuned",
                 verdict="b", raw="A=-2.0 B=-0.2 C=-3.0"),
    ]  # fmt: skip
    return [prompt], [cand, base], judgments


JUDGE_METRICS = {
    "judge": "tiny-judge", "mode": "logprobs", "candidate": "finetuned", "template": "abc123", "judge_model": "base",
    "counts": {"judgments": 2, "pairs": 1, "ratings": 2},
    "baselines": {"base": summarise(["win"] * 6 + ["tie"] * 3 + ["loss"] + ["invalid"], seed=0)},
    "reliability": {"position_consistency": 0.62, "first_position_preference": 0.8, "invalid_rate": 0.05,
                    "length_bias": 0.5, "option_mass": 0.3, "valid_pairs": 10, "decisive_pairs": 7},
    "grades": {"base": {"excellent": 0.1, "pass": 0.3, "fail": 0.6, "n": 10, "invalid": 0},
               "finetuned": {"excellent": 0.3, "pass": 0.5, "fail": 0.2, "n": 10, "invalid": 0}},
}  # fmt: skip
STAGE_METRICS = {"ingest": {"counts": {"examples": 120, "prompts": 30}}, "curate": {"counts": {"kept": 96}},
                 "judge": JUDGE_METRICS}  # fmt: skip
LINEAGE = {
    "artifacts": [{"what": "checkpoint", "stage": "train", "path": "models/final", "md5": "feed.dir", "size": 1234,
                   "nfiles": 3}],
    "params": {"train": {"train.lr": 0.0002}}, "git": {"commit": "deadbeef" * 5, "dirty": True}, "stages": ["train"],
}  # fmt: skip


@pytest.fixture(scope="module")
def html() -> str:
    prompts, responses, judgments = _records()
    return build_report(
        title="Demo <report>", experiment="exp-1", judge_metrics=JUDGE_METRICS, stage_metrics=STAGE_METRICS,
        judgments=judgments, responses=responses, prompts=prompts, lineage=LINEAGE,
    )  # fmt: skip


def test_page_fetches_nothing(html):
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.IGNORECASE)
    assert "http://" not in html.replace("https://evil.example", "")  # the only URL is the escaped model text
    assert "<script" not in html.lower() and "<link" not in html.lower() and "@import" not in html


def test_untrusted_text_is_escaped(html):
    assert "&lt;script&gt;alert(" in html and "&lt;img src=" in html
    assert "&lt;b&gt;quickly&lt;/b&gt;" in html and "Demo &lt;report&gt;" in html


def test_charts_are_inline_svg_with_bars(html):
    assert html.count("<svg") == 3  # outcomes, grades, record counts
    assert len(re.findall(r"<rect ", html)) >= 3 + 3 + 3


def test_sections_carry_the_numbers(html):
    assert "60%</b> wins" in html and "over 10 pairs" in html and "1 unreadable pair" in html
    assert "agreed with itself when the order of the two answers was swapped on 62% of 10 pairs" in html
    assert "Boil it for 7 minutes." in html and "A=-0.1 B=-2.0 C=-3.0" in html
    assert "feed.dir" in html and "deadbeef" in html and "uncommitted changes" in html and "train.lr" in html
    assert "validate" in html and "not run" in html  # a stage without metrics is shown, not hidden


def test_missing_results_render_without_errors():
    page = build_report(title="t", experiment="e", judge_metrics={}, stage_metrics={})
    assert "No judge results yet" in page and "No judged pairs" in page and "no git commit" in page


def test_trust_sentence_scales_with_consistency():
    assert "noise" in trust_sentence({"position_consistency": 0.3, "valid_pairs": 5})
    assert "weak signal" in trust_sentence({"position_consistency": 0.6, "valid_pairs": 5})
    assert "say nothing" in trust_sentence({"position_consistency": None, "valid_pairs": 0})


def test_figures_escape_labels_and_draw_no_data_rows():
    svg = figures.outcome_bars({"<b>": {"win": None, "tie": None, "loss": None, "n": 0, "ci": {}}}, "x&y")
    assert "&lt;b&gt;" in svg and "x&amp;y wins" in svg and "no valid data" in svg
    bars = figures.count_bars([("ingest: examples", 100), ("curate: kept", 0)])
    assert bars.count("<rect") == 2 and "100" in bars


def test_count_rows_lists_every_stage():
    rows = count_rows({"ingest": {"counts": {"examples": 3, "note": "x"}}})
    assert rows[0] == {"stage": "ingest", "name": "examples", "n": 3}
    assert [r["stage"] for r in rows[1:]] == ["validate", "curate", "train", "generate", "judge"]
