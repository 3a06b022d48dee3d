"""`make gpu-check` as a dry run: benchmarks/gpu_check.py on a tiny model on the CPU, every row of its table.

The GPU proof runs only when a session is lent a GPU; this keeps the script working in between: the four training
rows train (bf16 autocast, packed and not, with gradient checkpointing, LoRA), the transformers generation row
generates, and the rows a CPU cannot run say so instead of vanishing.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _rows(table: str) -> dict[str, dict[str, str]]:
    lines = [line for line in table.splitlines() if line.startswith("| ")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = [dict(zip(head, (c.strip() for c in line.strip("|").split("|")), strict=True)) for line in lines[1:]]
    return {r["row"]: r for r in rows}


def test_the_makefile_target_runs_the_script():
    make = (REPO / "Makefile").read_text()
    target = make[make.index("\ngpu-check:") :].split("\n\n")[0]
    assert "benchmarks/gpu_check.py" in target and ".[vllm]" in target


@pytest.mark.slow
def test_gpu_check_dry_run_prints_every_row():
    cmd = [sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--dry-run"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = _rows(done.stdout)
    train = [name for name in rows if "bf16" in name]
    assert len(train) == 4 and all(rows[n]["status"] == "ok" for n in train), done.stdout
    for name in train:
        assert float(rows[name]["tokens/s"].replace(",", "")) > 0 and rows[name]["peak memory"].endswith("MiB")
    # packed and unpacked take the same examples a step: the same last loss, up to bf16's rounding
    loss = {n: float(re.search(r"last loss ([\d.]+)", rows[n]["note"]).group(1)) for n in train}
    assert loss["full bf16, packed"] == pytest.approx(loss["full bf16, unpacked"], rel=0.01)
    assert rows["generate: transformers"]["status"] == "ok"
    assert rows["generate: vLLM"]["status"] == "not run" and "CUDA" in rows["generate: vLLM"]["note"]
    gpu_tests = rows["pytest -m gpu"]
    assert gpu_tests["status"] == "not run" and re.search(r"\d+(/\d+)? tests? collected", gpu_tests["note"])
