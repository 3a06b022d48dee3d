"""engine.py on the local engine (the Ray engine runs against a real cluster in tests/integration/test_ray_engine.py):
batches in order, a class built once, no rows without a cluster, and a clear error when ray names no cluster."""

from __future__ import annotations

import pyarrow as pa
import pytest

from lessismore.config import Data, RayCluster
from lessismore.engine import cluster, map_batches
from lessismore.errors import BadValue


def _spec(engine: str = "local", batch_rows: int = 3, address: str = "") -> Data:
    return Data(shard_rows=10, engine=engine, batch_rows=batch_rows, ray=RayCluster(address))


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
