"""Where ingest reads its sources (params data.engine): here, one after another; in worker processes, a few at once;
or on a Ray cluster, all at once.

On `local` with more than one source and data.workers other than 1, each source is read whole by a worker process
(engine.ordered) into a spool file of pickled chunks in a temp folder, a few sources ahead of the stage's process,
which takes the spools in params order, writes every output itself (the bytes of one process) and deletes each
spool as it has read it: disk holds a few sources' records, memory a chunk.

On `ray` each source is read by its own task on the cluster, a Ray streaming generator that hands back its records in
chunks of data.batch_rows while it reads; the driver takes the chunks source by source, in params order, and writes
every output itself, so the bytes are those of the local engine. The tasks read ahead of the driver by a few chunks
at most (Ray's generator backpressure), so memory does not follow the sources' size. A task reads the paths as
params give them, from the driver's working directory: the cluster must see the project's files there (a cluster
on this machine, as in the tests, or a volume mounted at the same path), or the sources must be s3:// or hf://.
What pays on a cluster is parsing: a Stack Exchange dump's HTML to markdown (~270 records/s a core) runs on as many
cores as there are sources.
"""

from __future__ import annotations

import atexit
import os
import pickle
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from lessismore.engine import cluster, connect, ordered, workers
from lessismore.sources import ingest_source
from lessismore.sources.common import Record

if TYPE_CHECKING:
    from lessismore.config import Data, Source

Read = Callable[["Source", int], Iterator[Record]]
AHEAD = 4  # chunks a source's task may have ready before the driver takes them


def reader(spec: Data, sources: Sequence[Source], first: int = 0) -> Read:
    """`read(source, index)` -> its records in order: `ingest_source` here, or on the cluster (every source from
    `first` on is started at once; a resumed run starts none before its checkpoint's source)."""
    if spec.engine == "local":
        if len(sources) - first <= 1 or workers(spec) <= 1:
            return ingest_source
        return _spooled(spec, sources, first)
    import ray

    connect(spec)
    task = ray.remote(num_cpus=1)(_read_chunks).options(
        num_returns="streaming", _generator_backpressure_num_objects=AHEAD
    )
    cwd = os.getcwd()
    started = {i: task.remote(s, i, cwd, spec.batch_rows) for i, s in enumerate(sources) if i >= first}
    print(f"ingest: {len(started)} source(s) read on the Ray cluster at {cluster(spec)}")

    def read(source: Source, index: int) -> Iterator[Record]:
        for ref in started.pop(index):
            yield from ray.get(ref)

    return read


def _read_chunks(source: Source, index: int, cwd: str, rows: int) -> Iterator[list[Record]]:
    """On a worker: the source's records in lists of `rows`, read from the driver's working directory."""
    os.chdir(cwd)
    chunk: list[Record] = []
    for rec in ingest_source(source, index=index):
        chunk.append(rec)
        if len(chunk) == rows:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _spooled(spec: Data, sources: Sequence[Source], first: int) -> Read:
    """`read` over spools that the local engine's workers write, source by source, in params order."""
    folder = Path(tempfile.mkdtemp(prefix="lessismore-ingest-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)  # also after an error: no spool is left behind
    make = partial(Spooler, os.getcwd(), str(folder), spec.batch_rows)
    spools = ordered(make, ((s, i) for i, s in enumerate(sources) if i >= first), spec)

    def read(source: Source, index: int) -> Iterator[Record]:
        path = Path(next(spools))
        assert path.name == f"{index:05d}.pickle", f"spool {path.name} is not source {index}'s"
        try:
            with path.open("rb") as f:
                while chunk := pickle.load(f):
                    yield from chunk
        finally:
            path.unlink()

    return read


class Spooler:
    """In a worker: a source read whole into `folder`/<index>.pickle, chunks of `rows` records and an empty one last
    (pickle, not Parquet: a Dropped holds whatever row its reader could not parse)."""

    def __init__(self, cwd: str, folder: str, rows: int) -> None:
        os.chdir(cwd)
        self.folder, self.rows = Path(folder), rows

    def __call__(self, job: tuple[Source, int]) -> str:
        source, index = job
        path = self.folder / f"{index:05d}.pickle"
        with path.open("wb") as f:
            for chunk in _read_chunks(source, index, os.getcwd(), self.rows):
                pickle.dump(chunk, f, protocol=pickle.HIGHEST_PROTOCOL)
            pickle.dump([], f)
        return str(path)
