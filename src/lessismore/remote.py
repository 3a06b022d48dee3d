"""The DVC remote on S3: `lessismore push` / `lessismore pull` (and `make push` / `make pull`).

Beside the pipeline, not in it: after `dvc repro`, push sends every stage's cached outputs (data, models, responses,
judgments, the persisted judge cache) to S3, and pull brings them back on another machine. Which remote:
- LESSISMORE_REMOTE_URL=s3://bucket/prefix (plus LESSISMORE_S3_ENDPOINT or AWS_ENDPOINT_URL for an S3-compatible
  server: MinIO, moto...) is written as the remote "lessismore" into .dvc/config.local (git-ignored), the default
  of this clone, so a plain `dvc push` works too afterwards;
- otherwise the default remote already in DVC's config (a team's shared one in .dvc/config), or its only remote.
Credentials come only from the standard AWS chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN,
AWS_PROFILE, ~/.aws, an instance role) and are never written anywhere. DVC's output is read for the failures people
hit (an unreachable endpoint or a connection dropped mid-transfer, denied access, a missing bucket, a missing cache)
and each becomes one message naming the endpoint and the fix. Secrets are masked in everything printed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

ENV_URL = "LESSISMORE_REMOTE_URL"
ENV_ENDPOINT = "LESSISMORE_S3_ENDPOINT"
NAME = "lessismore"  # the remote this module writes into .dvc/config.local
SECRETS = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
CREDENTIALS = "AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN), or AWS_PROFILE / ~/.aws/credentials"
Op = Literal["push", "pull"]


class RemoteError(RuntimeError):
    """A push or pull that cannot start or did not finish; the message says why and what to do."""


@dataclass(frozen=True)
class Remote:
    name: str
    url: str
    endpoint: str | None  # an S3-compatible server; None: AWS S3 itself
    origin: str  # where it was configured: the env variable or DVC config file


def endpoint_from_env(env: Mapping[str, str]) -> str | None:
    """The S3 endpoint the environment names, ours first, then the AWS SDK's own variables.

    >>> endpoint_from_env({"AWS_ENDPOINT_URL": "http://127.0.0.1:9000"}), endpoint_from_env({})
    ('http://127.0.0.1:9000', None)
    """
    names = (ENV_ENDPOINT, "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
    return next((env[n] for n in names if env.get(n)), None)


def check_url(url: str) -> str:
    """`url` if it is s3://bucket or s3://bucket/prefix, else a RemoteError saying what is expected.

    >>> check_url("s3://my-bucket/lessismore")
    's3://my-bucket/lessismore'
    >>> check_url("my-bucket/x")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    lessismore.remote.RemoteError: LESSISMORE_REMOTE_URL='my-bucket/x' is not s3://bucket/prefix ...
    """
    if not re.fullmatch(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/\S*)?", url):
        raise RemoteError(
            f"{ENV_URL}={url!r} is not s3://bucket/prefix (bucket: 3-63 characters, lowercase letters, digits, dots, "
            "hyphens); for another kind of remote use `dvc remote add -d NAME URL`"
        )
    return url.rstrip("/")


def parse_config_list(text: str) -> dict[str, tuple[str, str]]:
    """`dvc config --list --show-origin` -> {key: (value, origin file)}; later levels (config.local) win.

    >>> parse_config_list(".dvc/config\\tcore.remote=team\\n.dvc/config.local\\tcore.remote=mine\\n")
    {'core.remote': ('mine', '.dvc/config.local')}
    """
    out = {}
    for line in text.splitlines():
        origin, _, setting = line.rpartition("\t")
        key, sep, value = setting.partition("=")
        if sep:
            out[key.strip()] = (value.strip(), origin.strip())
    return out


def choose(config: Mapping[str, tuple[str, str]], env: Mapping[str, str]) -> Remote:
    """The remote to use: the env's LESSISMORE_REMOTE_URL, else DVC's default remote, else its only remote.

    >>> cfg = {"remote.team.url": ("s3://team-bucket/dvc", ".dvc/config"), "core.remote": ("team", ".dvc/config")}
    >>> choose(cfg, {"AWS_ENDPOINT_URL": "http://minio:9000"})
    Remote(name='team', url='s3://team-bucket/dvc', endpoint='http://minio:9000', origin='.dvc/config')
    >>> choose(cfg, {ENV_URL: "s3://mine/x"}).origin
    'LESSISMORE_REMOTE_URL'
    """
    if env.get(ENV_URL):
        return Remote(NAME, check_url(env[ENV_URL]), endpoint_from_env(env), ENV_URL)
    names = sorted({k.split(".")[1] for k in config if k.startswith("remote.") and k.endswith(".url")})
    name = config.get("core.remote", ("", ""))[0] or (names[0] if len(names) == 1 else "")
    if name not in names:
        found = f"DVC's config has remotes {names} but none is the default; " if names else "no DVC remote is set up; "
        raise RemoteError(
            found + f"set {ENV_URL}=s3://bucket/prefix (and {ENV_ENDPOINT} or AWS_ENDPOINT_URL for an S3-compatible "
            "server such as MinIO), with credentials in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, then run it again"
        )
    url, origin = config[f"remote.{name}.url"]
    endpoint = config.get(f"remote.{name}.endpointurl", ("", ""))[0] or endpoint_from_env(env)
    return Remote(name, url, endpoint, origin)


def mask(text: str, env: Mapping[str, str]) -> str:
    """`text` with the values of the secret variables (4 characters or more) replaced by ***.

    >>> mask("key=abcd1234 seen", {"AWS_SECRET_ACCESS_KEY": "abcd1234"})
    'key=*** seen'
    """
    for name in SECRETS:
        if len(env.get(name) or "") >= 4:
            text = text.replace(env[name], "***")
    return text


_UNREACHABLE = (
    "Could not connect to the endpoint URL",
    "Connection was closed before",
    "Connect timeout on endpoint URL",
    "Read timeout on endpoint URL",
    "Cannot connect to host",
    "Connection reset by peer",
    "Server disconnected",
    "ConnectionRefusedError",
    "Connection refused",
    "ClientOSError",
)
_DENIED = ("AccessDenied", "Access Denied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "Forbidden")
_NO_CREDENTIALS = ("Unable to locate credentials", "NoCredentialsError", "PartialCredentialsError")
_QUIET = ("ERROR: failed to transfer", "md5: ")  # one line per object: summed up by diagnose / missing_cache
_FAILED = re.compile(r"(\d+) files? failed to (upload|download)")


def server(remote: Remote) -> str:
    """The endpoint as messages name it.

    >>> server(Remote("r", "s3://b/p", None, "x")), server(Remote("r", "s3://b/p", "http://127.0.0.1:9000", "x"))
    ('AWS S3', 'the endpoint http://127.0.0.1:9000')
    """
    return f"the endpoint {remote.endpoint}" if remote.endpoint else "AWS S3"


def where(remote: Remote) -> str:
    """How messages name the remote: its URL and the endpoint it lives on."""
    return f"{remote.url} on {server(remote)}"


def diagnose(op: Op, output: str, remote: Remote) -> str:
    """What went wrong in a failed `dvc push` / `dvc pull`, from its output, as one message with the fix."""
    failed = _FAILED.search(output)
    count = f" ({failed.group(1)} files did not {'upload' if op == 'push' else 'download'})" if failed else ""
    again = f"`make {op}` (or `lessismore {op}`)"
    if any(s in output for s in _NO_CREDENTIALS):
        return f"{op} failed: no AWS credentials found for {where(remote)}; set {CREDENTIALS}"
    if any(s in output for s in _DENIED):
        return (
            f"{op} failed: access denied to {where(remote)}{count}; check the credentials in {CREDENTIALS}: they must "
            f"be valid for this endpoint and allow s3:ListBucket, s3:GetObject{', s3:PutObject' * (op == 'push')}"
        )
    if "NoSuchBucket" in output or "bucket does not exist" in output:
        bucket = remote.url.removeprefix("s3://").split("/")[0]
        return f"{op} failed: the bucket {bucket!r} does not exist on {server(remote)}; create it or fix {ENV_URL}"
    if any(s in output for s in _UNREACHABLE):
        kept = (
            "every object pushed before that is kept on the remote (each is whole or absent)"
            if op == "push"
            else "everything downloaded before that is kept in .dvc/cache"
        )
        return (
            f"{op} failed: {server(remote)} cannot be reached or dropped the connection ({remote.url}){count}; "
            f"{kept}. When the server is reachable again, re-run {again}: it transfers only what is missing."
        )
    if op == "pull" and ("Checkout failed" in output or "do not exist neither locally nor on remote" in output):
        return (
            f"pull incomplete: {where(remote)} lacks outputs that dvc.lock names{count}; run `make push` where the "
            "pipeline last ran, or rebuild them here with `dvc repro`"
        )
    tail = "\n".join(output.strip().splitlines()[-5:])
    return f"dvc {op} to {where(remote)} failed{count}:\n{tail}"


def missing_cache(output: str) -> int:
    """How many objects `dvc push` reported as neither in the local cache nor on the remote (its warning list).

    >>> missing_cache("WARNING: Some of the cache files do not exist neither locally nor on remote. Missing cache "
    ...               "files:\\nmd5: 1a2b\\nmd5: 3c4d.dir\\n2 files pushed")
    2
    """
    _, sep, rest = output.partition("Missing cache files:")
    return sum(1 for line in rest.splitlines() if line.startswith("md5: ")) if sep else 0


# ----------------------------------------------------------------------------------------------------------------
# side effects: DVC's config and the transfer itself (dvc's CLI in a subprocess: its own retries and parallelism)


def _dvc(root: Path, *args: str, env: Mapping[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=root, env=dict(env), capture_output=True, text=True
    )


def resolve(root: str | Path, env: Mapping[str, str] | None = None) -> Remote:
    """The remote for `root`; with LESSISMORE_REMOTE_URL set, (re)write it into .dvc/config.local first."""
    root, env = Path(root), dict(os.environ if env is None else env)
    if not (root / ".dvc").is_dir():
        raise RemoteError(f"{root.resolve()} is not a DVC repository (no .dvc/); run this from the project's root")
    listed = _dvc(root, "config", "--list", "--show-origin", env=env)
    config = parse_config_list(listed.stdout)
    remote = choose(config, env)
    if remote.origin == ENV_URL:
        wanted = {"url": remote.url, "endpointurl": remote.endpoint or ""}
        have = {k: config.get(f"remote.{NAME}.{k}", ("", ""))[0] for k in wanted}
        if have != wanted or config.get("core.remote", ("", ""))[0] != NAME:
            steps = [("remote", "add", "--local", "--force", "--default", NAME, remote.url)]
            steps += [("remote", "modify", "--local", NAME, "endpointurl", remote.endpoint)] if remote.endpoint else []
            for step in steps:
                done = _dvc(root, *step, env=env)
                if done.returncode != 0:
                    raise RemoteError(f"`dvc {' '.join(step)}` failed: {mask(done.stderr.strip(), env)}")
    return remote


def sync(
    root: str | Path,
    op: Op,
    env: Mapping[str, str] | None = None,
    jobs: int | None = None,
    echo: Callable[[str], None] = print,
) -> Remote:
    """`dvc push` / `dvc pull` every stage's cached outputs against the resolved remote; RemoteError on failure.

    DVC's lines are echoed (masked) as they come, except its one line per failed object, which `diagnose` sums up.
    """
    root, env = Path(root), dict(os.environ if env is None else env)
    remote = resolve(root, env)
    if env.get(ENV_ENDPOINT) and not env.get("AWS_ENDPOINT_URL_S3"):  # a team remote without endpointurl
        env["AWS_ENDPOINT_URL_S3"] = env[ENV_ENDPOINT]
    echo(f"dvc {op}: {where(remote)} (remote {remote.name!r} from {remote.origin})")
    cmd = [sys.executable, "-m", "dvc", op, "--remote", remote.name] + (["--jobs", str(jobs)] if jobs else [])
    lines = []
    with subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout or ():
            lines.append(line := mask(line.rstrip("\n"), env))
            if line.strip() and not line.startswith(_QUIET) and "dvc.org/support" not in line:
                echo(line)
    output = "\n".join(lines)
    if proc.returncode != 0:
        raise RemoteError(diagnose(op, output, remote))
    if op == "push" and (n := missing_cache(output)):
        raise RemoteError(
            f"push incomplete: {n} objects that dvc.lock names are neither in .dvc/cache nor on {where(remote)}; "
            "rebuild them with `dvc repro` (or `dvc commit` if the outputs on disk are right), then push again"
        )
    return remote
