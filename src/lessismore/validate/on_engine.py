"""Where validate runs its Great Expectations suite on the shards of examples (params data.engine): in the stage's
process, in its worker processes, or on a Ray cluster, a shard a task.

On `local` with more than one shard and data.workers other than 1, the shards go to that many worker processes,
on `ray` to a pool of actors (one a CPU of the cluster): engine.pooled either way, each worker or actor with its own
GX session, built once, at most a few shards in flight each. A result is what the suite found (each expectation's
outcome, each failing row's problems) and the GX results of the shard, which the stage's own session stores, so the
one Data Docs site shows every shard. The ids, the counts, the kept shards and the quarantine are decided and
written in the stage's process, in order, from those results: the bytes are the local engine's. The prompts (one
small batch) and the whole-table checks run in the stage's process.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from lessismore.engine import cluster, pooled, workers
from lessismore.validate.docs import GXSession
from lessismore.validate.run import CheckBatches, Checked, check_batch, suite_checks

if TYPE_CHECKING:
    from lessismore.config import Data


def checker(spec: Data, *, min_chars: int, max_chars: int, shards: int) -> CheckBatches | None:
    """(batch, label) pairs -> Checked results in order, computed by actors on the cluster (ray) or by the local
    engine's worker processes (engine.pooled); None (validate_shards checks in its own session) for one shard or
    one worker."""
    if spec.engine == "local":
        if shards <= 1 or workers(spec) <= 1:
            return None
        print(f"validate: the example shards checked by {workers(spec)} worker processes")
    else:
        print(f"validate: the example shards checked by actors on the Ray cluster at {cluster(spec)}")
    return partial(pooled, partial(ShardChecker, min_chars, max_chars), spec=spec)


class ShardChecker:
    """A GX session and the examples suite, built once (per Ray actor): a shard in, its Checked out."""

    def __init__(self, min_chars: int, max_chars: int) -> None:
        self.session = GXSession(None)
        self.checks = suite_checks("examples", min_chars, max_chars)

    def check(self, table: Any, label: str) -> Checked:
        checked = check_batch(self.session, self.checks, "examples", table, label)
        return Checked(checked.outcomes, checked.problems, self.session.new_results())

    def __call__(self, labelled: tuple[Any, str]) -> Checked:
        return self.check(*labelled)
