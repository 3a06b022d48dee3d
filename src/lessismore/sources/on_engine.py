"""Where ingest reads its sources (params data.engine): here, one after another; in worker processes, a few at once;
or on a Ray cluster, all at once.

On `local` with more than one source and data.workers other than 1, each file of a source (a glob's match; an
hf:// dataset whole) is read by a worker process (engine.ordered) into a spool file of pickled chunks in the stage's
work folder, a few files ahead of the stage's process, which takes the spools in params order, writes every output
itself (the bytes of one process) and deletes each spool as it has read it: disk holds a few files' records, memory
a chunk. A file is the unit of work: one large file alone is read by one worker.

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
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from lessismore.engine import cluster, connect, ordered, workers
from lessismore.sources import ingest_source, read_file, source_files
from lessismore.sources.common import Record

if TYPE_CHECKING:
    from lessismore.config import Data, Source

Read = Callable[["Source", int], Iterator[Record]]
AHEAD = 4  # chunks a source's task may have ready before the driver takes them


def reader(spec: Data, sources: Sequence[Source], first: int = 0, spool: Path | None = None) -> Read:
    """`read(source, index)` -> its records in order: `ingest_source` here, by the local engine's workers (their
    spools in `spool`, a folder of the stage's work: a temp folder when None), or on the cluster (every source from
    `first` on is started at once; a resumed run starts none before its checkpoint's source)."""
    if spec.engine == "local":
        if workers(spec) <= 1:
            return ingest_source
        files = {i: source_files(s, i) or [None] for i, s in enumerate(sources) if i >= first}  # all checked first
        jobs = sum(len(f) for f in files.values())
        if jobs <= 1:
            return ingest_source
        print(f"ingest: {jobs} file(s) of {len(files)} source(s) read by {workers(spec)} worker processes")
        return _spooled(spec, sources, files, spool)
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
    yield from _chunks(ingest_source(source, index=index), rows)


def _chunks(records: Iterable[Record], rows: int) -> Iterator[list[Record]]:
    chunk: list[Record] = []
    for rec in records:
        chunk.append(rec)
        if len(chunk) == rows:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _spooled(spec: Data, sources: Sequence[Source], files: dict[int, list], spool: Path | None) -> Read:
    """`read` over spools that the local engine's workers write, a file a job (`files`: each source's from the
    first to read, None for a whole hf:// dataset), source by source and file by file in params order. A killed
    run's spools are removed first; the stage's work folder goes, spools and all, when the stage finishes."""
    if spool is None:
        spool = Path(tempfile.mkdtemp(prefix="lessismore-ingest-"))
        atexit.register(shutil.rmtree, spool, ignore_errors=True)
    shutil.rmtree(spool, ignore_errors=True)
    spool.mkdir(parents=True)
    jobs = ((sources[i], i, k, file) for i, paths in files.items() for k, file in enumerate(paths))
    spools = ordered(partial(Spooler, os.getcwd(), str(spool), spec.batch_rows), jobs, spec)

    def read(source: Source, index: int) -> Iterator[Record]:
        for k in range(len(files[index])):
            path = Path(next(spools))
            assert path.name == f"{index:05d}-{k:05d}.pickle", f"spool {path.name} is not source {index}'s file {k}"
            try:
                with path.open("rb") as f:
                    while chunk := pickle.load(f):
                        yield from chunk
            finally:
                path.unlink()

    return read


class Spooler:
    """In a worker: one file of a source (or the source, an hf:// dataset) read whole into
    `folder`/<index>-<k>.pickle, chunks of `rows` records and an empty one last (pickle, not Parquet: a Dropped holds
    whatever row its reader could not parse)."""

    def __init__(self, cwd: str, folder: str, rows: int) -> None:
        os.chdir(cwd)
        self.folder, self.rows = Path(folder), rows

    def __call__(self, job: tuple[Source, int, int, str | None]) -> str:
        source, index, k, file = job
        path = self.folder / f"{index:05d}-{k:05d}.pickle"
        records = ingest_source(source, index) if file is None else read_file(source, file)
        with path.open("wb") as f:
            for chunk in _chunks(records, self.rows):
                pickle.dump(chunk, f, protocol=pickle.HIGHEST_PROTOCOL)
            pickle.dump([], f)
        return str(path)
