"""stages/judge.py then stages/report.py with a 5-level judge (judge/prompts/pairwise5.txt) behind a real
OpenAI-compatible server on 127.0.0.1 (tests/servers.py), which answers with Arena-Hard's labels.

The server reads which answer is the candidate's and replies: prompt 1 and 2, the candidate much better; prompt 3,
the baseline slightly better in one order and a tie in the other.
"""

from __future__ import annotations

import json
import re

import pytest
import yaml

from lessismore import records
from tests.integration.test_stage_judge_report import _run, _workspace
from tests.servers import fault_servers
from tests.specs import judge_entry


def _arena_reply(message: str) -> str:
    i = int(re.search(r"Question (\d+):", message).group(1))
    cand_first = "[BEGIN ANSWER A]\nfinetuned answer" in message
    if i in (1, 2):
        return "My final verdict: [[A>>B]]" if cand_first else "[[B>>A]]"
    return "[[B>A]]" if cand_first else "[[A=B]]"


@pytest.mark.slow
def test_a_five_level_judge_weighs_strong_verdicts_in_the_stage_and_the_report(tmp_path, tiny_model_dir):
    _workspace(tmp_path, tiny_model_dir)
    with fault_servers() as start:
        server = start(reply=_arena_reply, latency_s=0.0)
        endpoint = {"base_url": server.url, "api_key_env": "LESSISMORE_NO_KEY", "concurrency": 2}
        arena = judge_entry(
            name="arena5",
            backend="openai",
            model="judge-model",
            template="pairwise5",
            absolute_template="",
            mode="generate",
            calibrate=False,
            max_new_tokens=32,
            openai=endpoint | {"timeout_s": 10.0, "max_retries": 1},
        )
        params = yaml.safe_load((tmp_path / "params.yaml").read_text())
        judge = {"judges": [arena], "primary": "arena5", "panel": {"judges": [], "combine": "mean"}}
        params["judge"] |= judge | {"injection": {"pairs": 0}, "strong_weight": 3.0}
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        _run("judge", tmp_path)
        assert len(server.bodies) == 3 * 2 and "[[A>>B]]" in server.bodies[0]["messages"][-1]["content"]

    judgments = records.read_jsonl(tmp_path / "outputs" / "judgments.jsonl", records.Judgment)
    levels = sorted(j.meta["level"] for j in judgments)
    assert levels == ["A=B", "A>>B", "A>>B", "B>>A", "B>>A", "B>A"]
    assert sorted(j.verdict for j in judgments) == ["a", "a", "b", "b", "b", "tie"]
    metrics = json.loads((tmp_path / "metrics" / "judge.json").read_text())
    head = metrics["judges"]["arena5"]
    assert head["levels"] == 5 and head["strong_weight"] == 3.0
    base = metrics["baselines"]["base"]
    assert base["counts"] == {"win": 2, "tie": 1, "loss": 0} and base["invalid"] == 0
    # Arena-Hard's count: the strong wins are 3 games an order (4 x 3 won), prompt 3 one lost and one tied game
    assert base["soft"]["win_rate"] == pytest.approx((12 + 0 + 0.5) / 14, abs=1e-6) and base["soft"]["n"] == 3

    _run("report", tmp_path)
    html = (tmp_path / "reports" / "index.html").read_text()
    assert "a strong verdict ([[A&gt;&gt;B]]) counts 3 times, as Arena-Hard" in html
