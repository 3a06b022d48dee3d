"""Hugging Face datasets (`hf://owner/name`, or `hf://<local directory>`) -> rows -> the format's row converter.

Sits under sources/: `ingest_source` sends an hf:// path here with the row converter of the source's format
(lima_row, alpaca_row, sharegpt_row, openai_row, prompt_row, writingprompts_row), so a dataset row becomes a
record exactly as a file line would. Strictly offline (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE are forced on); the
dataset is found, in this order, as:
  1. a local directory: a `save_to_disk` copy, or a directory of data files (parquet, jsonl, csv...);
  2. the hub cache (HF_HOME/hub, as `hf download --repo-type dataset owner/name` or any hub download left it),
     read through the snapshot that refs/main names;
  3. the datasets cache (HF_HOME/datasets, as an earlier online `load_dataset("owner/name")` left it).
`datasets` 5.2 does not do 2 by itself: offline, `load_dataset("owner/name")` only looks at its own cache (3).
Rows are numbered from 0 (`ds[i]`); origin.file is "hf://owner/name[split]" ("[config/split]" with a config).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lessismore.errors import BadValue, NotFound
from lessismore.sources.common import Record, RowFn, SourceFile


def read_hf(
    path: str,
    convert: RowFn,
    *,
    source: str,
    license: str,
    split: str,
    format: str,
    hf_split: str,
    hf_config: str,
    key: str,
) -> Iterator[Record]:
    """Load the dataset now (so a missing one fails at once, with the fix), then yield its rows' records lazily."""
    dataset = load_hf(path, hf_split, hf_config, key)
    where = f"{path}[{hf_config + '/' if hf_config else ''}{hf_split}]"
    src = SourceFile(source=source, path=where, license=license, split=split, format=format, unit="row")
    return (convert(src, i, dict(row)) for i, row in enumerate(dataset))


def load_hf(path: str, split: str, config: str, key: str) -> Any:
    """The split of an hf:// dataset, from a local directory or the caches (see the module doc); offline only."""
    datasets = _offline_datasets()
    target, name, local = path.removeprefix("hf://"), config or None, Path(path.removeprefix("hf://"))
    home = Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface")
    cache = os.environ.get("HF_DATASETS_CACHE") or str(home / "datasets")  # read now: datasets read it at import
    try:
        if (local / "dataset_dict.json").exists() or (local / "state.json").exists():  # a save_to_disk copy
            loaded = datasets.load_from_disk(target)
        elif local.is_dir():  # a directory of data files
            loaded = datasets.load_dataset(target, name=name, cache_dir=cache)
        elif snapshot := _hub_snapshot(target, os.environ.get("HF_HUB_CACHE") or str(home / "hub")):
            loaded = datasets.load_dataset(snapshot, name=name, cache_dir=cache)
        else:
            loaded = datasets.load_dataset(target, name=name, cache_dir=cache)
    except (ConnectionError, FileNotFoundError) as err:
        if local.is_dir():
            raise NotFound(
                f"{key}.path: {path} is a directory without a dataset in it ({err}); point it at a save_to_disk "
                "copy or at a directory of data files (parquet, jsonl, csv...)"
            ) from None
        raise NotFound(
            f"{key}.path: {path} is not available offline ({type(err).__name__}: {err}). Nothing is downloaded at "
            f"run time: on a connected machine run `hf download --repo-type dataset {target}` and copy its "
            f"HF_HOME/hub into {home / 'hub'} here (or set HF_HOME to where it is), or point {key}.path at a local "
            "copy (hf://<dir> of a save_to_disk copy or of data files)"
        ) from None
    except (datasets.exceptions.DatasetGenerationError, ValueError) as err:
        if "config" in str(err).lower():  # "BuilderConfig 'x' not found. Available: [...]", "Config name is missing"
            raise BadValue(f"{key}.hf_config: cannot load {path} with config {config!r}: {err}") from None
        cause = err.__cause__ or err  # files that do not parse, or splits whose columns disagree
        raise BadValue(
            f"{key}.path: {path}: its data files could not be read ({cause}); fix or replace them"
        ) from None
    if not isinstance(loaded, datasets.DatasetDict):
        return loaded  # a save_to_disk copy of one split: it is the split
    if split not in loaded:
        raise BadValue(f"{key}.hf_split: {path} has no split {split!r}; it has {sorted(loaded)}")
    return loaded[split]


def _hub_snapshot(repo_id: str, hub_cache: str) -> str | None:
    """The local snapshot directory of a dataset repo in the hub cache (refs/main), or None when it is not there."""
    if repo_id.count("/") != 1:
        return None
    repo = Path(hub_cache) / f"datasets--{repo_id.replace('/', '--')}"  # the hub cache's documented layout
    ref = repo / "refs" / "main"
    if not ref.is_file():
        return None
    snapshot = repo / "snapshots" / ref.read_text(encoding="utf-8").strip()
    return str(snapshot) if snapshot.is_dir() else None


def _offline_datasets() -> Any:
    """`datasets`, imported with the hub switched off, even when something imported it earlier in this process."""
    os.environ["HF_HUB_OFFLINE"] = os.environ["HF_DATASETS_OFFLINE"] = "1"
    import datasets

    datasets.config.HF_HUB_OFFLINE = True
    datasets.disable_progress_bars()  # the ingest stage shows its own progress
    return datasets
