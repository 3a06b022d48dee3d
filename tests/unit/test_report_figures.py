"""The report's pieces on real vl-convert output: SVG cleaning, hostile labels, the step log reader, ablation
points, and the offline `dvc plots` template built from the real vega bundle."""

from __future__ import annotations

import re

from lessismore.report import curves, figures, sections, specs
from lessismore.report.plots import write_offline_template
from lessismore.train.steplog import metric_files, read_steps


def test_two_rendered_charts_share_no_id_and_carry_no_url():
    xy = {"x": {"field": "x", "type": "quantitative"}, "y": {"field": "y", "type": "quantitative"}}
    panel = {"mark": {"type": "line", "clip": True}, "encoding": xy}
    clipped = specs.chart({"data": {"values": [{"x": i, "y": i * i} for i in range(9)]}, "concat": [panel, panel]})
    first, second = figures.render(clipped, "fig-a", "two panels"), figures.render(clipped, "fig-b", "two panels")
    ids_a, ids_b = set(re.findall(r'\sid="([^"]+)"', first)), set(re.findall(r'\sid="([^"]+)"', second))
    assert len(ids_a) == 2 and not ids_a & ids_b  # vega names its clip paths clip1, clip2... in every chart
    assert {u[len("url(#") : -1] for u in re.findall(r"url\(#[^)]+\)", first)} == ids_a  # references follow
    assert "http" not in first and 'fill="white"' not in first.split(">", 2)[1]  # no xmlns, no background rect
    assert first.startswith('<svg role="img" aria-label="two panels" version="1.1" class="marks chart"')


def test_hostile_labels_are_drawn_as_text():
    evil = '"><script>alert(1)</script>'
    spec = specs.outcome_spec({evil: {"win": 0.5, "tie": 0.3, "loss": 0.2, "n": 9, "ci": {"win": [0.3, 0.7]}}}, evil)
    svg = figures.render(spec, "x", evil)
    assert "<script" not in svg and "&lt;script&gt;" in svg and 'aria-label="&quot;&gt;&lt;script' in svg


def test_a_row_without_shares_is_drawn_as_no_valid_data():
    svg = figures.render(specs.outcome_spec({"base": {"win": None, "tie": None, "loss": None, "n": 0}}, "ft"), "x")
    assert "no valid data" in svg


def test_step_log_keeps_good_rows_and_names_bad_ones(tmp_path):
    folder = tmp_path / "plots" / "metrics"
    folder.mkdir(parents=True)
    loss, lr = folder / "loss.tsv", folder / "lr.tsv"
    loss.write_text("step\tloss\n1\t2.0\nx\t1.9\n3\t\n4\t1.7\n")
    lr.write_text("step\tlr\n1\t1e-4\n3\t1e-4\n4\tnan\n")
    assert metric_files(tmp_path) == [loss, lr]
    rows, problems = read_steps(tmp_path)
    assert [r["step"] for r in rows] == [1.0, 3.0, 4.0] and "loss" not in rows[1] and rows[1]["lr"] == 1e-4
    assert [p.split(": ", 1)[0] for p in problems] == [f"{loss} line 3", f"{loss} line 4"]
    assert all(p.endswith("; the row is left out of the curves") for p in problems)
    assert read_steps(tmp_path / "missing") == ([], [])


def test_ablation_points_without_a_budget_or_value_are_counted_not_drawn():
    points, bad = sections.ablation_points(
        {
            "metric": "win",
            "points": [
                {"variant": "lima", "budget": "many", "win": 0.2},
                {"variant": "lima", "budget": 500, "win": None},
                {"variant": "lima", "budget": 250, "win": 0.3},
            ],
        }
    )
    assert bad == 2 and [(p["budget"], p["lo"], p["hi"]) for p in points] == [(250, 0.3, 0.3)]
    svg = figures.render(curves.ablation_spec(points, "base"), "ab")
    assert "250" in svg and "<path" in svg


def test_offline_template_inlines_the_bundle_and_keeps_only_dvc_placeholders(tmp_path):
    page = write_offline_template(tmp_path / "deep" / "plots.html").read_text()
    assert "{plot_divs}" in page and "{refresh_tag}" in page and "{scripts}" not in page
    assert "window.vegaEmbed=" in page.replace(" ", "") and len(page) > 500_000
    assert "<script src" not in page and "<link" not in page and page.count("<script") == 1
