"""engine.py on the local engine (the Ray engine runs against a real cluster in tests/integration/test_ray_engine.py):
batches in order, a class built once, no rows without a cluster, a clear error when ray names no cluster, and the
local engine's worker processes (`ordered`): results in input order, built once a worker, errors raised as
themselves."""

from __future__ import annotations

import os
from functools import partial

import pyarrow as pa
import pytest

from lessismore.config import Data, RayCluster
from lessismore.engine import cluster, map_batches, ordered
from lessismore.errors import BadValue


def _spec(engine: str = "local", batch_rows: int = 3, address: str = "", workers: int = 1) -> Data:
    return Data(shard_rows=10, engine=engine, batch_rows=batch_rows, workers=workers, ray=RayCluster(address))


def _double(table: pa.Table) -> pa.Table:
    return pa.table({"y": [2 * x for x in table.column("x").to_pylist()], "n": [table.num_rows] * table.num_rows})


class Counted:
    built = 0

    def __init__(self) -> None:
        Counted.built += 1

    def __call__(self, table: pa.Table) -> pa.Table:
        return _double(table)


def test_local_batches_keep_the_order_and_the_batch_size():
    out = map_batches(_double, pa.table({"x": list(range(8))}), _spec(batch_rows=3), desc="t")
    assert out.column("y").to_pylist() == [2 * x for x in range(8)]
    assert out.column("n").to_pylist() == [3, 3, 3, 3, 3, 3, 2, 2]  # batches of data.batch_rows, the last shorter


def test_a_class_is_built_once_and_no_rows_need_no_cluster():
    Counted.built = 0
    map_batches(Counted, pa.table({"x": list(range(7))}), _spec(batch_rows=2), desc="t")
    assert Counted.built == 1
    empty = map_batches(_double, pa.table({"x": pa.array([], pa.int64())}), _spec("ray"), desc="t")  # never connects
    assert empty.num_rows == 0 and empty.column_names == ["y", "n"]


def test_ray_names_its_cluster_from_params_or_the_environment(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(BadValue, match="set data.ray.address in params.yaml"):
        cluster(_spec("ray"))
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:6379")
    assert cluster(_spec("ray")) == "10.0.0.5:6379" and cluster(_spec("ray", address="h:1")) == "h:1"


class Tagged:
    """Built once a process: tags each item with the process and how many items it saw there."""

    def __init__(self, scale: int) -> None:
        self.scale, self.seen = scale, 0

    def __call__(self, item: int) -> tuple[int, int, int]:
        if item < 0:
            raise ValueError(f"item {item} is negative")
        self.seen += 1
        return item * self.scale, os.getpid(), self.seen


def test_ordered_runs_in_worker_processes_in_input_order_each_built_once():
    out = list(ordered(partial(Tagged, 3), range(40), _spec(workers=2)))
    assert [value for value, _, _ in out] == [3 * i for i in range(40)]
    pids = {pid for _, pid, _ in out}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2  # at most two workers (started as needed), none here
    for pid in pids:  # one Tagged a worker: its count runs 1, 2, ... over the items that worker took
        assert [seen for _, p, seen in out if p == pid] == list(range(1, sum(p == pid for _, p, _ in out) + 1))
    again = list(ordered(partial(Tagged, 3), range(4), _spec(workers=2)))
    assert {pid for _, pid, _ in again} <= pids  # an equal builder reuses the same pool


def test_ordered_with_one_worker_stays_here_and_a_worker_error_is_raised_as_itself():
    assert {pid for _, pid, _ in ordered(partial(Tagged, 1), range(5), _spec(workers=1))} == {os.getpid()}
    with pytest.raises(ValueError, match="item -1 is negative"):
        list(ordered(partial(Tagged, 1), [1, 2, -1, 3], _spec(workers=2)))


def test_map_batches_on_workers_gives_the_batches_of_one_process():
    table = pa.table({"x": list(range(11))})
    one = map_batches(_double, table, _spec(batch_rows=3, workers=1), desc="t")
    assert map_batches(_double, table, _spec(batch_rows=3, workers=2), desc="t").equals(one)
