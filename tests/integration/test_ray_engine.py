"""data.engine ray on a real Ray cluster on 127.0.0.1 (a head and a second node, one CPU each), against the local
engine: the per-batch functions give the same bits, and ingest (its sources read by tasks on the cluster), validate
(the example shards checked by actors there) and curate (signatures and embeddings there) write the same bytes on
both engines. The cluster is stopped however the test ends."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import make_pipeline_repo, run_env
from tests.servers import ray_cluster

pytestmark = pytest.mark.slow
OUTPUTS = {
    "ingest": ("data/ingested", "data/quarantine/ingest.jsonl", "metrics/ingest.json"),
    "validate": ("data/validated", "data/quarantine/validate.jsonl", "metrics/validate.json"),
    "curate": (
        "data/curated/train.jsonl",
        "data/curated/README.md",
        "data/quarantine/curate.jsonl",
        "metrics/curate.json",
    ),
}


def _bytes(root: Path, rel: str) -> dict[str, bytes]:
    """A file's bytes, or every file's under a folder, by path."""
    path = root / rel
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with ray_cluster(tmp_path_factory.mktemp("ray")) as address:
        yield address


def _stage(repo: Path, name: str, env: dict | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, f"stages/{name}.py"]
    return subprocess.run(cmd, cwd=repo, env=env or run_env(), capture_output=True, text=True, timeout=900)


def _set(repo: Path, **data) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["data"] |= data
    params["curate"]["diversity"] = "kcenter"  # embeddings too: a model per Ray actor
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_ingest_validate_curate_write_the_same_bytes_on_ray_as_locally(tmp_path, cluster):
    local = make_pipeline_repo(tmp_path / "local")
    _set(local, engine="local", batch_rows=7, shard_rows=40)  # several shards: several validate tasks
    on_ray = tmp_path / "ray"
    shutil.copytree(local, on_ray)
    _set(on_ray, engine="ray", batch_rows=7, shard_rows=40, ray={"address": cluster})  # over two nodes
    for stage in ("ingest", "validate", "curate"):
        for repo in (local, on_ray):
            done = _stage(repo, stage)
            assert done.returncode == 0, f"{stage} in {repo.name}: {done.stderr[-3000:]}"
            if repo is on_ray:
                assert f"on the Ray cluster at {cluster}" in done.stdout  # it did run there
        for rel in OUTPUTS[stage]:
            assert _bytes(on_ray, rel) == _bytes(local, rel), f"{rel} differs between the engines"
    pages = [sorted(p.name for p in (r / "reports/data_docs/validations").rglob("*.html")) for r in (local, on_ray)]
    assert len(pages[0]) == len(pages[1]) > 4  # every shard checked on the cluster has its Data Docs page
    metrics = json.loads((local / "metrics/curate.json").read_text())
    assert metrics["counts"]["selected"] > 0 and metrics["diversity"] is not None  # embeddings were used


def test_batch_functions_give_the_same_values_on_the_cluster(cluster):
    import pyarrow as pa

    from lessismore.config import Data, RayCluster
    from lessismore.curate.embed import EmbedBatch
    from lessismore.curate.neardup import signature_batch, signatures
    from lessismore.engine import map_batches

    texts = [f"text number {i}: " + "word " * (i % 17) for i in range(50)]
    table = pa.table({"text": texts})
    on_ray = Data(shard_rows=10, engine="ray", batch_rows=6, workers=1, ray=RayCluster(address=cluster))
    local = Data(shard_rows=10, engine="local", batch_rows=6, workers=1, ray=RayCluster(address=""))
    sign = partial(signature_batch, shingle=3, num_perm=16)
    remote = map_batches(sign, table, on_ray, desc="minhash").column("minhash").to_pylist()
    assert np.array_equal(np.array(remote, dtype=np.uint32), signatures(texts, 3, 16))  # in order, every bit
    ray_vec = map_batches(EmbedBatch, table, on_ray, desc="embed", gpu=True).column("vector").to_pylist()
    here = map_batches(EmbedBatch, table, local, desc="embed").column("vector").to_pylist()
    assert np.array_equal(np.array(ray_vec), np.array(here))  # two actors vs one process, the same batches of 6
    whole = Data(shard_rows=10, engine="local", batch_rows=50, workers=1, ray=RayCluster(address=""))
    one_batch = map_batches(EmbedBatch, table, whole, desc="embed").column("vector").to_pylist()
    assert np.allclose(one_batch, here, atol=1e-6)  # other batches pad otherwise: equal to float32 rounding only


def test_ray_without_a_cluster_named_is_a_clear_error(tmp_path, monkeypatch):
    repo = make_pipeline_repo(tmp_path / "repo")
    for stage in ("ingest", "validate"):
        assert _stage(repo, stage).returncode == 0
    _set(repo, engine="ray", ray={"address": ""})
    env = {k: v for k, v in run_env().items() if k != "RAY_ADDRESS"}
    done = _stage(repo, "curate", env)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "data.engine is ray but no cluster is named: set data.ray.address" in done.stderr
