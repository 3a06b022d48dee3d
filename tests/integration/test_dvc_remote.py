"""`lessismore push` / `lessismore pull` against a real S3 endpoint: a moto server on 127.0.0.1 used as a DVC remote.

A real git + DVC repository in tmp_path with one small stage (many small files, a persisted out like the judge
cache, a metrics file) stands in for the pipeline. The endpoint DVC talks to is a TCP relay in front of moto, the
fault seam: `cut()` closes every open connection mid-request and then the port, which is what a crashed server or
a dropped network looks like to the client; moto itself is then stopped and a new ThreadedMotoServer started (its
backends are module globals, so the objects already pushed are still there); the relay listens again on the same
port. Wrong credentials: a moto server of its own that checks signatures, as a real S3 or MinIO does.
"""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from tests.conftest import run_env
from tests.servers import free_port

SECRET = "moto-secret-key-never-printed-0123456789"
MAKE = """import json, pathlib, sys
n = int(sys.argv[1])
out = pathlib.Path("data/many")
out.mkdir(parents=True, exist_ok=True)
for i in range(n):
    (out / f"{i:04d}.txt").write_text(f"row {i} of {n}\\n")
cache = pathlib.Path("outputs/cache.jsonl")
cache.parent.mkdir(exist_ok=True)
with cache.open("a") as fh:
    fh.write(json.dumps({"run": n}) + "\\n")
pathlib.Path("metrics").mkdir(exist_ok=True)
pathlib.Path("metrics/m.json").write_text(json.dumps({"n": n}))
"""
OUTS = ("data/many", "outputs/cache.jsonl")  # what push must carry: a directory and a persisted file


def _moto() -> tuple[object, int]:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server, port


class Relay:
    """A TCP relay on a fixed 127.0.0.1 port to the moto server; `cut_at`: cut everything at that PUT request."""

    def __init__(self, target: int, cut_at: int = 0):
        self.port, self.target, self.cut_at, self.puts = free_port(), target, cut_at, 0
        self.socks: set[socket.socket] = set()
        self.lock, self.was_cut = threading.Lock(), threading.Event()

    def start(self, target: int | None = None) -> Relay:
        self.target, self.cut_at = target or self.target, 0 if target else self.cut_at
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
                upstream = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                return
            with self.lock:
                self.socks |= {client, upstream}
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, to_server: bool) -> None:
        try:
            while data := src.recv(65536):
                if to_server and self.cut_at:
                    with self.lock:
                        self.puts += data.count(b"PUT /")
                        cut = self.puts >= self.cut_at and not self.was_cut.is_set()
                    if cut:
                        self.cut()
                        return
                dst.sendall(data)
        except OSError:
            pass

    def cut(self) -> None:
        """Close the port and every connection. shutdown() first: a bare close() would not wake the threads blocked
        in accept() / recv() on those sockets, and the kernel would keep them open."""
        self.was_cut.set()
        with self.lock:
            socks, self.socks = [self.listener, *self.socks], set()
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


def _make_repo(root: Path, n_files: int) -> Path:
    """git init + dvc init, one stage writing `n_files` small files, a persisted jsonl and a metric; dvc repro."""
    import yaml

    root.mkdir(parents=True)
    (root / "make.py").write_text(MAKE)
    stage = {
        "cmd": f"python make.py {n_files}",
        "deps": ["make.py"],
        "outs": ["data/many", {"outputs/cache.jsonl": {"persist": True}}],
        "metrics": [{"metrics/m.json": {"cache": False}}],
    }
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"make": stage}}))
    for cmd in (
        ["git", "init", "-q"],
        ["dvc", "init", "-q"],
        ["dvc", "config", "core.analytics", "false"],
        ["dvc", "repro", "-q"],
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "stage"],
    ):
        subprocess.run(cmd, cwd=root, env=run_env(), check=True, capture_output=True)
    return root


def _env(endpoint: str | None = None, url: str | None = None) -> dict[str, str]:
    """Fake credentials, none of the endpoint/remote variables unless given; no SDK retries (a dead endpoint fails
    at once instead of after backoff: the test stays in seconds)."""
    env = run_env() | {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": SECRET}
    env |= {"AWS_DEFAULT_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "1"}
    for name in ("LESSISMORE_REMOTE_URL", "LESSISMORE_S3_ENDPOINT", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        env.pop(name, None)
    env |= {"LESSISMORE_S3_ENDPOINT": endpoint} if endpoint else {}
    return env | ({"LESSISMORE_REMOTE_URL": url} if url else {})


def _cli(repo: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "lessismore.cli", *args, "--root", str(repo)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)


def _hashes(repo: Path) -> dict[str, str]:
    files = [p for out in OUTS for p in ([repo / out] if (repo / out).is_file() else sorted((repo / out).rglob("*")))]
    return {str(p.relative_to(repo)): hashlib.md5(p.read_bytes()).hexdigest() for p in files}


def _wipe(repo: Path) -> None:
    import shutil

    shutil.rmtree(repo / ".dvc" / "cache")
    for out in OUTS:
        shutil.rmtree(repo / out) if (repo / out).is_dir() else (repo / out).unlink()


def _objects(port: int, bucket: str) -> int:
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id="testing",
        aws_secret_access_key=SECRET,
        region_name="us-east-1",
    )
    return sum(page.get("KeyCount", 0) for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket))


def _bucket(port: int) -> str:
    import boto3

    name = f"lessismore-remote-{uuid.uuid4().hex[:8]}"  # moto's backends are shared by every server in this process
    boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id="testing",
        aws_secret_access_key=SECRET,
        region_name="us-east-1",
    ).create_bucket(Bucket=name)
    return name


@pytest.fixture
def moto():
    server, port = _moto()
    yield port
    server.stop()


def _pull_is_identical(repo: Path, env: dict[str, str], before: dict[str, str]) -> None:
    """Wipe the cache and the outputs, pull, and check every file's md5 and that DVC sees nothing changed."""
    _wipe(repo)
    pulled = _cli(repo, env, "pull")
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    assert _hashes(repo) == before
    status = subprocess.run(["dvc", "status", "--json"], cwd=repo, env=env, capture_output=True, text=True, check=True)
    assert json.loads(status.stdout) == {}


@pytest.mark.slow
def test_push_wipe_pull_gives_identical_files_and_no_secret_is_written(moto, tmp_path):
    repo = _make_repo(tmp_path / "repo", n_files=5)
    before = _hashes(repo)
    bucket, endpoint = _bucket(moto), f"http://127.0.0.1:{moto}"
    env = _env(endpoint, f"s3://{bucket}/store")
    pushed = _cli(repo, env, "push")
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    assert f"s3://{bucket}/store on the endpoint {endpoint}" in pushed.stdout
    assert _objects(moto, bucket) == 5 + 1 + 1  # each file, the directory's .dir listing, the persisted jsonl
    local = (repo / ".dvc" / "config.local").read_text()
    assert f"url = s3://{bucket}/store" in local and f"endpointurl = {endpoint}" in local
    ignored = subprocess.run(["git", "check-ignore", "-q", ".dvc/config.local"], cwd=repo, env=env)
    assert ignored.returncode == 0  # never committed
    assert "remote" not in (repo / ".dvc" / "config").read_text()
    written = [p for p in repo.rglob("*") if p.is_file() and ".git" not in p.parts and "cache" not in p.parts]
    assert not [p for p in written if SECRET in p.read_text(errors="ignore")]
    assert SECRET not in pushed.stdout + pushed.stderr
    shown = _cli(repo, _env(), "remote")  # the remote is in config.local now: no env needed
    assert (
        f"remote 'lessismore': s3://{bucket}/store on the endpoint {endpoint} (from .dvc/config.local)" in shown.stdout
    )
    assert "AWS_SECRET_ACCESS_KEY" in shown.stdout and SECRET not in shown.stdout
    _pull_is_identical(repo, _env(), before)


@pytest.mark.slow
def test_a_teams_remote_in_dvc_config_is_used_and_none_at_all_says_what_to_set(moto, tmp_path):
    repo = _make_repo(tmp_path / "repo", n_files=2)
    missing = _cli(repo, _env(), "push")
    assert missing.returncode == 1 and "LESSISMORE_REMOTE_URL=s3://bucket/prefix" in missing.stderr
    bucket, endpoint = _bucket(moto), f"http://127.0.0.1:{moto}"
    for cmd in (
        ["dvc", "remote", "add", "-d", "team", f"s3://{bucket}/team"],
        ["dvc", "remote", "modify", "team", "endpointurl", endpoint],
    ):
        subprocess.run(cmd, cwd=repo, env=_env(), check=True, capture_output=True)
    pushed = _cli(repo, _env(), "push")
    assert pushed.returncode == 0 and "remote 'team' from .dvc/config" in pushed.stdout, pushed.stderr
    assert _objects(moto, bucket) == 2 + 1 + 1 and not (repo / ".dvc" / "config.local").exists()
    # DVC itself exits 0 when objects are neither in the cache nor on the remote; push must not look complete
    _wipe(repo)
    subprocess.run(
        ["dvc", "remote", "modify", "team", "url", f"s3://{bucket}/empty"], cwd=repo, env=_env(), check=True
    )
    incomplete = _cli(repo, _env(), "push")
    assert incomplete.returncode == 1 and "push incomplete: 2 objects that dvc.lock names" in incomplete.stderr
    assert "neither in .dvc/cache nor on" in incomplete.stderr  # 2: the directory's listing and the jsonl


@pytest.mark.slow
def test_server_stopping_mid_push_gives_a_clear_error_and_a_re_push_completes(tmp_path):
    n_files = 60
    repo = _make_repo(tmp_path / "repo", n_files=n_files)
    before = _hashes(repo)
    first, port = _moto()
    bucket = _bucket(port)
    relay = Relay(port, cut_at=12).start()
    endpoint = f"http://127.0.0.1:{relay.port}"
    env = _env(endpoint, f"s3://{bucket}/store")
    broken = _cli(repo, env, "push")
    assert relay.was_cut.is_set() and broken.returncode == 1, broken.stdout + broken.stderr
    error = broken.stderr
    assert f"push failed: the endpoint {endpoint} cannot be reached or dropped the connection" in error, error
    assert "files did not upload" in error and "re-run `make push`" in error and SECRET not in broken.stdout + error
    kept = _objects(port, bucket)
    assert 0 < kept < n_files + 2, kept  # some objects made it, not all

    first.stop()  # the server itself goes down; a new one in this process has the same buckets and objects
    second, port2 = _moto()
    try:
        assert _objects(port2, bucket) == kept
        relay.start(target=port2)  # the endpoint answers again, on the same port
        again = _cli(repo, env, "push")
        assert again.returncode == 0, again.stdout + again.stderr
        assert f"{n_files + 2 - kept} files pushed" in again.stdout  # only what was missing
        assert _objects(port2, bucket) == n_files + 2
        _pull_is_identical(repo, env, before)
    finally:
        relay.cut()
        second.stop()


@pytest.mark.slow
def test_credentials_the_server_rejects_give_access_denied_with_the_fix(tmp_path):
    """moto checks signatures against its own IAM users once INITIAL_NO_AUTH_ACTION_COUNT actions have passed: one
    (creating the bucket), then the push's unknown access key is refused, as a real S3 or MinIO would."""
    import time
    import urllib.request

    port = free_port()
    env = run_env() | {"INITIAL_NO_AUTH_ACTION_COUNT": "1"}  # read at import: hence a server of its own
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/data.json", timeout=2)  # not an S3 action
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "moto server did not start"
                time.sleep(0.2)
        bucket = _bucket(port)  # the one unauthenticated action
        repo = _make_repo(tmp_path / "repo", n_files=3)
        endpoint = f"http://127.0.0.1:{port}"
        denied = _cli(repo, _env(endpoint, f"s3://{bucket}/store"), "push")
        assert denied.returncode == 1, denied.stdout + denied.stderr
        assert f"push failed: access denied to s3://{bucket}/store on the endpoint {endpoint}" in denied.stderr
        assert "AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY" in denied.stderr and "s3:PutObject" in denied.stderr
        assert SECRET not in denied.stdout + denied.stderr
    finally:
        server.terminate()
        server.wait(timeout=30)
