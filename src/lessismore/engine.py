"""Where the data stages' heavy per-batch work runs: in this process, or on a Ray cluster through Ray Data.

params `data.engine`:
- `local` (the default) runs the batches on this machine and starts no cluster: in the stage's process, or, where
  there is more than one batch, in `data.workers` worker processes of the standard library's pool (`ordered`: 0
  means one a CPU core; 1 keeps everything in the stage's process). A worker builds what it needs once (a GX
  session, a model) and the stage takes the results in input order.
- `ray` runs the same function on a Ray cluster with Ray Data (`map_batches` over the rows, in blocks of
  `data.batch_rows`): at `data.ray.address`, or the `RAY_ADDRESS` environment variable when that is "" (KubeRay in
  production; `ray start` on 127.0.0.1 in the tests). The package travels with the job (`runtime_env` py_modules),
  so the cluster runs exactly this commit's code.
A stage's per-batch work that needs state built once (a GX session, an n-gram index) goes through `pooled`: the
local engine's worker processes (`ordered`), or on ray a pool of actors, each building it once.

Both engines give the same bytes, by construction: a batch function is pure and row-wise (each output row is a
function of its input row alone), both engines cut the rows into the same batches of data.batch_rows (an embedding
model pads a batch to its longest text, so its floats depend on the batch: measured, they differ in the 8th digit
between batches of 6 and of 50), Ray Data keeps the input order (`preserve_order`), and every output is written
here, by the caller, from the rows in order. A function that needs a model is a class (loaded once per Ray actor,
or once per worker process here) and runs a batch on one thread on a CPU (curate/embed.py: sums split by thread
differ in the last bits on some CPUs); one that needs nothing is a plain function.
"""

from __future__ import annotations

import atexit
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lessismore.errors import BadValue

if TYPE_CHECKING:
    from lessismore.config import Data

BatchFn = Callable[[Any], Any]  # a pyarrow Table -> a pyarrow Table of as many rows, row-wise


def cluster(spec: Data) -> str:
    """The Ray cluster's address: data.ray.address, else RAY_ADDRESS."""
    address = spec.ray.address or os.environ.get("RAY_ADDRESS", "")
    if not address:
        raise BadValue(
            "data.engine is ray but no cluster is named: set data.ray.address in params.yaml (e.g. 127.0.0.1:6379 "
            "after `ray start --head`) or the RAY_ADDRESS environment variable"
        )
    return address


def workers(spec: Data) -> int:
    """The local engine's worker processes: data.workers, or one a CPU core this process may run on when 0."""
    return spec.workers or len(os.sched_getaffinity(0))


_WORKER: Callable[[Any], Any] | None = None  # in a worker process: what `ordered` runs there, built once


def _start(make: Callable[[], Callable[[Any], Any]]) -> None:
    global _WORKER
    _orphan_watch(os.getppid())
    _WORKER = make()


def _orphan_watch(parent: int, every: float = 0.5) -> None:
    """In a worker: exit as soon as the stage's process is gone (killed with SIGKILL, or by the OOM killer). A pool
    worker would wait forever otherwise (it holds its own end of the job queue's pipe, so it never sees EOF), each
    one keeping its GX session or n-gram index in memory: measured, a test's kill -9 left four for good."""
    import threading

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os._exit(1)

    threading.Thread(target=watch, name="orphan-watch", daemon=True).start()


def _call(item: Any) -> Any:
    assert _WORKER is not None, "engine._call runs in a worker that _start built"
    return _WORKER(item)


def ordered(make: Callable[[], Callable[[Any], Any]], items: Iterable[Any], spec: Data) -> Iterator[Any]:
    """`make()(item)` for every item, in `workers(spec)` worker processes, the results in input order.

    `make` (picklable: a class, or a functools.partial of one) builds the callable once per worker: a GX session,
    a reader. The pool lives as long as this process and serves every call with an equal `make` (curate signs
    batch after batch). Workers are spawned, not forked (a fork copies the locks of pyarrow's, torch's and tqdm's
    threads mid-use), so they import what they run and nothing else. At most two items a worker are in flight and
    the rest are drawn from `items` as results are taken: memory holds a few items, whatever the input's size. An
    error in a worker is raised here as itself. With one worker everything runs in this process.
    """
    n = workers(spec)
    if n <= 1:
        call = make()
        yield from (call(item) for item in items)
        return
    pool = _pool(make, n)
    running: deque[Any] = deque()
    for item in items:
        running.append(pool.submit(_call, item))
        if len(running) >= 2 * n:
            yield running.popleft().result()
    while running:
        yield running.popleft().result()


AHEAD = 2  # items queued a Ray actor by `pooled`: one worked on while the next is shipped


def pooled(make: Callable[[], Callable[[Any], Any]], items: Iterable[Any], spec: Data) -> Iterator[Any]:
    """`make()(item)` for every item, the results in input order, on data.engine: `ordered` on local; on ray a pool
    of actors, one a CPU of the cluster, each building `make()` once (a GX session, an n-gram index), the items
    handed to them in turn with at most AHEAD an actor in flight (ray.util.ActorPool.map would submit every item at
    once), so memory holds a few items an actor, whatever the input's size. The items and results travel to and
    from the cluster: they must not name files of this machine."""
    if spec.engine == "local":
        yield from ordered(make, items, spec)
        return
    import ray

    connect(spec)
    actor = ray.remote(num_cpus=1)(_Built)
    actors = [actor.remote(make) for _ in range(max(1, int(ray.cluster_resources()["CPU"])))]
    running: deque[Any] = deque()
    for k, item in enumerate(items):
        running.append(actors[k % len(actors)].call.remote(item))
        if len(running) >= AHEAD * len(actors):
            yield ray.get(running.popleft())
    while running:
        yield ray.get(running.popleft())


class _Built:
    """A Ray actor holding `make()`, built once."""

    def __init__(self, make: Callable[[], Callable[[Any], Any]]) -> None:
        self.fn = make()

    def call(self, item: Any) -> Any:
        return self.fn(item)


_POOLS: dict[tuple[bytes, int], Any] = {}  # (pickled make, workers) -> its ProcessPoolExecutor, for this process


def _pool(make: Callable[[], Callable[[Any], Any]], n: int) -> Any:
    import multiprocessing
    import pickle
    from concurrent.futures import ProcessPoolExecutor

    key = (pickle.dumps(make), n)
    if key not in _POOLS:
        if not _POOLS:
            atexit.register(_close_pools)
        context = multiprocessing.get_context("spawn")
        _POOLS[key] = ProcessPoolExecutor(n, mp_context=context, initializer=_start, initargs=(make,))
    return _POOLS[key]


def _close_pools() -> None:
    """At exit, before the interpreter tears its modules down (a pool collected after that complains)."""
    while _POOLS:
        _POOLS.popitem()[1].shutdown(cancel_futures=True)


def map_batches(fn: BatchFn | type, table: Any, spec: Data, *, desc: str, gpu: bool = False) -> Any:
    """`fn` over `table`'s rows in batches of data.batch_rows on data.engine; the outputs concatenated, in order.

    `fn` is a function of one pyarrow Table, or a class whose instances are (built once: per worker process here,
    per Ray actor on the cluster; with `gpu`, one GPU per actor where the cluster has GPUs). A progress bar counts
    the rows.
    """
    import pyarrow as pa

    if table.num_rows == 0:  # no cluster is needed for nothing: the output's schema, computed here
        return (fn() if isinstance(fn, type) else fn)(table)
    if spec.engine == "local":
        from tqdm import tqdm

        batches = [pa.Table.from_batches([b]) for b in table.to_batches(max_chunksize=spec.batch_rows)]
        make = fn if isinstance(fn, type) else partial(_built, fn)  # a class: one instance (a model) a worker
        results = map(make(), batches) if len(batches) == 1 else ordered(make, batches, spec)
        out = []
        with tqdm(total=table.num_rows, desc=desc, unit="row", disable=len(batches) <= 1) as bar:
            for batch, result in zip(batches, results, strict=True):
                out.append(result)
                bar.update(batch.num_rows)
        return pa.concat_tables(out)
    return _on_ray(fn, table, spec, desc=desc, gpu=gpu)


def _built(fn: BatchFn) -> BatchFn:
    """`fn` itself: what `ordered` builds in each worker from a plain batch function."""
    return fn


def _on_ray(fn: BatchFn | type, table: Any, spec: Data, *, desc: str, gpu: bool) -> Any:
    import pyarrow as pa
    import ray

    connect(spec)
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True  # blocks come back in input order: the same rows as local
    ctx.enable_progress_bars = True
    options: dict[str, Any] = {"batch_format": "pyarrow", "batch_size": spec.batch_rows, "zero_copy_batch": True}
    if isinstance(fn, type):  # a model to load once per actor: one actor per GPU (asked for), else per CPU
        gpus = ray.cluster_resources().get("GPU", 0) if gpu else 0
        options |= {
            "concurrency": max(1, int(gpus or ray.cluster_resources().get("CPU", 1))),
            "num_gpus": 1 if gpus else 0,
        }
    rows = spec.batch_rows  # one block a batch: the blocks are Ray's unit of parallel work
    ds = ray.data.from_arrow([table.slice(i, rows) for i in range(0, table.num_rows, rows)]).map_batches(fn, **options)
    print(f"{desc}: {table.num_rows} rows on the Ray cluster at {cluster(spec)}")
    return pa.concat_tables(list(ds.iter_batches(batch_format="pyarrow", batch_size=None)))


def connect(spec: Data) -> None:
    """Join the cluster once per process, shipping this package so that workers run the same code."""
    import ray

    if ray.is_initialized():
        return
    package = str(Path(__file__).resolve().parent)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # offline at run time: no usage reports, no metric queries
    try:
        ray.init(
            address=cluster(spec),
            runtime_env={"py_modules": [package]},
            log_to_driver=False,
            logging_level="ERROR",
        )
    except ConnectionError as err:
        raise BadValue(
            f"data.engine ray: no Ray cluster answers at {cluster(spec)} ({err}); start one (`ray start --head`) "
            "or fix data.ray.address / RAY_ADDRESS"
        ) from None
