"""Where source files live: local paths, s3:// URIs (fsspec + s3fs) and globs of either -> the files and their bytes.

Used by sources/ (`ingest_source` expands a params `ingest.sources[i].path` into files with `expand`, and every reader
opens its file with `open_binary`, never Path.open, so any file format is read from S3 as from disk) and by
configcheck, which checks every local source path before a stage does any work.
S3 credentials come from the standard AWS chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN,
AWS_PROFILE, ~/.aws, an instance role); AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL points at an S3-compatible server
(MinIO, moto...). Errors name the variables to set, never their values.
"""

from __future__ import annotations

import glob
import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from lessismore.errors import Denied, IsFolder, NotFound, Unreachable, UserError

_GLOB_CHARS = "*?["
_BLOCK = 8 * 2**20  # bytes fetched per S3 range request: memory stays at a few blocks whatever the file size
_CREDENTIALS = "AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)"


def is_remote(path: str) -> bool:
    """True for a URI that fsspec opens (s3://, gs://...); local paths and file:// URIs are read directly.

    >>> is_remote("s3://bucket/se/*/Posts.xml"), is_remote("data/sources/x.jsonl"), is_remote("file:///tmp/x")
    (True, False, False)
    """
    return "://" in path and not path.startswith("file://")


def has_glob(path: str) -> bool:
    """True for a path with glob characters: each file it matches is read as its own file.

    >>> has_glob("data/se/*/Posts.xml"), has_glob("s3://b/k.csv")
    (True, False)
    """
    return any(c in path for c in _GLOB_CHARS)


def endpoint() -> str | None:
    """The S3 endpoint set in the environment (an S3-compatible server), or None for AWS itself."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def filesystem(path: str) -> Any:
    """A fresh fsspec filesystem for a remote URI: no cached instance, credentials or listings from earlier calls."""
    import fsspec

    protocol = path.split("://", 1)[0]
    options: dict[str, Any] = {"skip_instance_cache": True}
    if protocol in ("s3", "s3a"):
        options |= {"use_listings_cache": False} | ({"endpoint_url": endpoint()} if endpoint() else {})
    return fsspec.filesystem(protocol, **options)


def expand(path: str, key: str, source: str) -> list[str]:
    """The files a params path names, sorted: the path itself, or every file a glob matches.

    Errors say which params key is wrong, what was found and how to fix it: a missing file, a glob that matches
    nothing, a directory, denied access, missing credentials or an unreachable endpoint.
    """
    path = path.removeprefix("file://")
    if not is_remote(path):
        return _expand_local(path, key, source)
    protocol = path.split("://", 1)[0]
    try:
        fs = filesystem(path)
        if has_glob(path):
            found = fs.glob(path, detail=True)
            files = sorted(f"{protocol}://{p}" for p, info in found.items() if info.get("type") == "file")
        else:
            files = [path] if fs.info(path).get("type") == "file" else []
    except FileNotFoundError:
        raise NotFound(f"{key}: {path} does not exist (source {source!r}); {_fix_remote(path)}") from None
    except PermissionError as err:
        raise Denied(
            f"{key}: access to {path} was denied ({err}); give the credentials in the environment ({_CREDENTIALS}) "
            "s3:GetObject and s3:ListBucket on it, or fix the path"
        ) from None
    except Exception as err:  # botocore's NoCredentialsError / EndpointConnectionError, which s3fs passes through
        raise _remote_error(err, key, path, source) from None
    if not files and has_glob(path):
        raise NotFound(f"{key}: the glob {path} matches no file (source {source!r}); {_fix_remote(path)}")
    if not files:
        raise IsFolder(f"{key}: {path} is a directory, not a file; name a file, or a glob such as {path}/*")
    return files


def _expand_local(path: str, key: str, source: str) -> list[str]:
    where = f"(source {source!r}, run from {Path.cwd()})"
    if has_glob(path) and not os.path.isfile(path):  # a file named "a[1].csv" is that file, not a pattern
        files = sorted(p for p in glob.glob(path, recursive=True) if os.path.isfile(p))
        if not files:
            raise NotFound(
                f"{key}: the glob {path} matches no file {where}; fix the pattern in params.yaml "
                "(relative paths start at the repository root; `**` matches any depth)"
            )
        return files
    if os.path.isfile(path):
        return [path]
    if os.path.isdir(path):
        raise IsFolder(
            f"{key}: {path} is a directory, not a file {where}; name a file in it, or a glob such as {path}/*.jsonl"
        )
    raise NotFound(
        f"{key}: {path} does not exist {where}; fix the path in params.yaml (relative paths start at the repository "
        "root) or create the file (`dvc pull` fetches tracked sources)"
    )


def _fix_remote(path: str) -> str:
    server = f"the endpoint {endpoint()} (AWS_ENDPOINT_URL)" if endpoint() else "AWS S3 (no AWS_ENDPOINT_URL set)"
    parent = path.rsplit("/", 1)[0]
    return f"looked on {server}; check the bucket and key (`aws s3 ls {parent}/`), fix the path, or upload the file"


def _remote_error(err: Exception, key: str, path: str, source: str) -> UserError:
    name = type(err).__name__
    if name in ("NoCredentialsError", "PartialCredentialsError"):
        return Denied(f"{key}: no credentials to read {path} (source {source!r}); set {_CREDENTIALS}")
    if name in ("EndpointConnectionError", "ConnectTimeoutError", "ClientConnectorError"):
        return Unreachable(
            f"{key}: cannot reach the S3 endpoint for {path} ({err}); check AWS_ENDPOINT_URL and the network"
        )
    return NotFound(f"{key}: cannot read {path} (source {source!r}): {name}: {err}")


@contextmanager
def open_binary(path: str) -> Iterator[BinaryIO]:
    """Open a local file or a remote URI for reading bytes, buffered, so readers can iterate it line by line."""
    path = path.removeprefix("file://")
    if not is_remote(path):
        with open(path, "rb") as fh:
            yield fh
        return
    # fsspec's own readline reads a whole block per line; a BufferedReader over it reads each block once
    with filesystem(path).open(path, "rb", block_size=_BLOCK, cache_type="readahead") as raw:
        yield io.BufferedReader(raw, buffer_size=2**20)
