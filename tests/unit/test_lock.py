"""The committed dvc.lock is the lock of this commit: every stage's code, params and git-tracked data match it.

Fast (`dvc status` hashes the deps, runs nothing), so a change to a stage's code, params or sources cannot land
without the refreshed lock (`make demo`, then commit dvc.lock with metrics/ and logs/). Deps that another stage
produces are left out: a fresh clone has none of them, and their staleness shows at the stage that makes them.
"""

from __future__ import annotations

import json
import subprocess
import sys

import yaml

from tests.conftest import REPO, run_env


def _produced() -> list[str]:
    """Every out of dvc.yaml; a foreach stage's templated out (outputs/responses/${item}.jsonl) as its folder."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    bodies = [s.get("do", s) for s in stages.values()]
    entries = [e for s in bodies for key in ("outs", "metrics", "plots") for e in s.get(key) or []]
    paths = [e if isinstance(e, str) else next(iter(e)) for e in entries]
    return [p.split("${")[0].rstrip("/") for p in paths]


def test_the_committed_lock_matches_the_code_params_and_sources():
    done = subprocess.run(
        [sys.executable, "-m", "dvc", "status", "--json"], cwd=REPO, env=run_env(), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    produced = _produced()
    stale: dict[str, dict] = {}
    for stage, changes in json.loads(done.stdout or "{}").items():
        for change in (c for c in changes if isinstance(c, dict)):
            for path, what in (change.get("changed deps") or {}).items():
                if not any(path == p or path.startswith(p + "/") or p.startswith(path + "/") for p in produced):
                    stale.setdefault(stage, {})[path] = what
    assert stale == {}, (
        f"dvc.lock is not this commit's lock: {stale}. Run `make demo` and commit dvc.lock, metrics/ and logs/ "
        "(README: Reproduce our numbers)"
    )
