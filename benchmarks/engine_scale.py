"""Benchmark: curate's per-row work (MinHash signatures) on data.engine ray against local, on real published text.

The texts are the pool's Alpaca-5000 (instruction + input + output) repeated to --rows with a row number appended
(every text distinct, the real length distribution). Both engines run neardup.signature_batch through
engine.map_batches on the same texts in batches of --batch-rows; the result must be the same bits. Ray runs on the
cluster at --address, or on a real one this script starts on 127.0.0.1 (`ray start --head` plus --nodes - 1 nodes
joining it, one CPU each) and stops at the end. The time on Ray includes shipping the rows to the cluster and
back; starting the cluster is not counted (a cluster is long-lived), connecting to it is. The anchor is the local
engine in the same run; the last line is `engine_scale: ratio ray/local = <x>` (above 1: Ray is faster).

    python benchmarks/engine_scale.py [--pool ../shared/data/pool] [--rows 50000] [--nodes 2] [--address HOST:PORT]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


def sign(spec, texts: list[str]):
    """The texts' MinHash values (5-word shingles, 128 permutations) computed in batches on spec.engine."""
    from functools import partial

    import numpy as np
    import pyarrow as pa

    from lessismore.curate.neardup import signature_batch
    from lessismore.engine import map_batches

    fn = partial(signature_batch, shingle=5, num_perm=128)
    out = map_batches(fn, pa.table({"text": pa.array(texts, pa.string())}), spec, desc="minhash")
    return np.asarray(out.column("minhash").combine_chunks().flatten().to_numpy()).reshape(-1, 128)


def texts_from_pool(pool: Path, rows: int) -> list[str]:
    data = json.loads((pool / "alpaca_subset" / "alpaca_5000.json").read_text(encoding="utf-8"))
    base = [f"{r['instruction']}\n{r.get('input', '')}\n{r['output']}" for r in data]
    return [f"{base[i % len(base)]} ({i})" for i in range(rows)]


@contextlib.contextmanager
def local_cluster(nodes: int) -> Iterator[str]:
    """A real Ray cluster on 127.0.0.1, one CPU a node, stopped on the way out."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    ray = str(Path(sys.executable).with_name("ray"))
    common = ["--num-cpus=1", "--object-store-memory=300000000", "--disable-usage-stats"]
    try:
        with tempfile.TemporaryDirectory(prefix="ray-") as tmp:
            cmds = [[ray, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", f"--temp-dir={tmp}"]]
            cmds[0] += ["--include-dashboard=false", *common]
            cmds += [[ray, "start", f"--address=127.0.0.1:{port}", "--node-ip-address=127.0.0.1", *common]] * (
                nodes - 1
            )
            for cmd in cmds:
                subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=180)
            yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([ray, "stop", "--force"], env=env, capture_output=True, timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", default="../shared/data/pool")
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--batch-rows", type=int, default=1000)
    parser.add_argument("--nodes", type=int, default=2, help="nodes of the cluster this script starts")
    parser.add_argument("--address", default="", help="an existing cluster instead of starting one")
    args = parser.parse_args()
    pool = Path(args.pool)
    if not (pool / "alpaca_subset" / "alpaca_5000.json").is_file():
        sys.exit(f"engine_scale: no alpaca_subset/alpaca_5000.json under {pool}; pass --pool <dir>")
    import numpy as np

    from lessismore.config import Data, RayCluster

    texts = texts_from_pool(pool, args.rows)
    words = sum(len(t.split()) for t in texts)
    print(
        f"engine_scale: {len(texts):,} texts, {words / len(texts):.0f} words on average, batches of {args.batch_rows}"
    )
    local = Data(shard_rows=args.batch_rows, engine="local", batch_rows=args.batch_rows, ray=RayCluster(""))
    t = time.perf_counter()
    here = sign(local, texts)
    local_s = time.perf_counter() - t
    print(f"  local: {local_s:.1f} s ({len(texts) / local_s:,.0f} texts/s), one process")
    cluster = contextlib.nullcontext(args.address) if args.address else local_cluster(args.nodes)
    with cluster as address:
        remote = Data(shard_rows=args.batch_rows, engine="ray", batch_rows=args.batch_rows, ray=RayCluster(address))
        t = time.perf_counter()
        there = sign(remote, texts)
        ray_s = time.perf_counter() - t
        import ray

        cpus = int(ray.cluster_resources().get("CPU", 0))
    print(f"  ray:   {ray_s:.1f} s ({len(texts) / ray_s:,.0f} texts/s), {cpus} CPUs at {address}")
    same = bool(np.array_equal(here, there))
    print(f"  the same bits on both engines: {same}")
    print(f"engine_scale: ratio ray/local = {local_s / ray_s:.2f}")
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
