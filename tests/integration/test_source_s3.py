"""s3:// sources against a real S3 endpoint: a moto server on 127.0.0.1 (s3fs needs a real HTTP endpoint).

The same fixture files are written to disk and uploaded; reading them through s3:// must give the same records
(same ids, same meta) as the local read, each with origin.file the object's s3:// URI.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from lessismore.records import Dropped, Example, Prompt
from tests.specs import read_source

pytestmark = pytest.mark.slow

BUCKET = "lessismore-sources"
SECRET = "fake-secret-key-for-moto"


def _posts(qid: int, title: str, answer: str) -> str:
    body = f'<row Id="{qid + 1}" PostTypeId="2" ParentId="{qid}" Score="12" Body="&lt;p&gt;{answer}&lt;/p&gt;" />'
    question = f'<row Id="{qid}" PostTypeId="1" Score="3" Title="{title}" Tags="|t|" Body="&lt;p&gt;Why?&lt;/p&gt;" />'
    return f'<?xml version="1.0" encoding="utf-8"?>\n<posts>\n  {question}\n  {body}\n</posts>\n'


FILES = {  # key -> content; every format the pipeline reads from files, some with a bad row
    "se/stem/Posts.xml": _posts(1, "Why is ice slippery?", "A thin liquid-like layer."),
    "se/cooking/Posts.xml": _posts(7, "Why rest meat?", "The juices settle."),
    "alpaca.json": json.dumps(
        [{"instruction": "Add 2 and 2.", "input": "", "output": "4"}, {"instruction": "Say hi.", "output": 5}]
    ),
    "sharegpt.jsonl": json.dumps({"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo"}]})
    + "\n{broken\n",
    "wp.csv": 'row_id,prompt,story\n7,"[ WP ] A dog can talk .","`` Hi ,  said the dog ."\n8,[ OT ] Chat,no\n',
    "wikihow.csv": 'title,result\nBrew Tea,"1. Boil water.\n2. Steep."\n',
    "prompts.txt": "\ufeffWhy is the sky blue?\n\nName three rivers.\n",
}
SOURCES = [  # (format, path under the root, split)
    ("stackexchange_xml", "se/*/Posts.xml", "train"),
    ("alpaca_json", "alpaca.json", "train"),
    ("sharegpt_jsonl", "sharegpt.jsonl", "train"),
    ("writingprompts_csv", "wp.csv", "train"),
    ("wikihow_csv", "wikihow.csv", "train"),
    ("prompts_txt", "prompts.txt", "test"),
]


@pytest.fixture(scope="module")
def endpoint():
    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3(endpoint, monkeypatch, tmp_path) -> Path:
    """Fake credentials and the endpoint in the environment; the fixture files on disk and in a fresh bucket."""
    import boto3

    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_DEFAULT_REGION": "us-east-1"}
    for name, value in (env | {"AWS_ENDPOINT_URL": endpoint}).items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket=BUCKET)
    for key, text in FILES.items():
        (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / key).write_text(text, encoding="utf-8")
        client.put_object(Bucket=BUCKET, Key=key, Body=text.encode("utf-8"))
    yield tmp_path
    for key in FILES:
        client.delete_object(Bucket=BUCKET, Key=key)
    client.delete_bucket(Bucket=BUCKET)


def _view(records: list, root: str) -> list[tuple]:
    """What must match between two reads: kind, id (reason for a drop), row, meta, and the file under its root."""
    out = []
    for r in records:
        what = r.reason if isinstance(r, Dropped) else r.id
        meta = None if isinstance(r, Dropped) else r.meta
        out.append((type(r).__name__, what, r.origin.row, meta, r.origin.file.removeprefix(root)))
    return out


@pytest.mark.parametrize(("fmt", "path", "split"), SOURCES, ids=[s[0] for s in SOURCES])
def test_s3_read_equals_local_read(s3, fmt, path, split):
    local = list(read_source("src", fmt, str(s3 / path), split, "CC", index=0))
    remote = list(read_source("src", fmt, f"s3://{BUCKET}/{path}", split, "CC", index=0))
    assert any(isinstance(r, Example | Prompt) for r in local)
    assert _view(remote, f"s3://{BUCKET}/") == _view(local, f"{s3}/")
    assert all(r.origin.file.startswith(f"s3://{BUCKET}/") for r in remote)
    assert all(d.detail.startswith(f"s3://{BUCKET}/{path}") for d in remote if isinstance(d, Dropped))


def test_s3_glob_reads_each_site_as_its_own_file(s3):
    examples = list(read_source("se", "stackexchange_xml", f"s3://{BUCKET}/se/*/Posts.xml", "train", index=0))
    assert [(e.origin.file, e.meta["site"], e.prompt) for e in examples] == [
        (f"s3://{BUCKET}/se/cooking/Posts.xml", "cooking", "Why rest meat?\n\nWhy?"),
        (f"s3://{BUCKET}/se/stem/Posts.xml", "stem", "Why is ice slippery?\n\nWhy?"),
    ]


def test_s3_missing_key_and_empty_glob_name_the_params_key(s3):
    with pytest.raises(FileNotFoundError, match=r"ingest\.sources\[3\]\.path: s3://.*/nope\.jsonl does not exist"):
        read_source("x", "lima_jsonl", f"s3://{BUCKET}/nope.jsonl", "train", index=3)
    with pytest.raises(FileNotFoundError, match=r"ingest\.sources\[0\]\.path: the glob .* matches no file"):
        read_source("x", "stackexchange_xml", f"s3://{BUCKET}/se/*/Comments.xml", "train", index=0)
    with pytest.raises(FileNotFoundError, match=r"does not exist.*AWS_ENDPOINT_URL"):
        read_source("x", "lima_jsonl", "s3://no-such-bucket/a.jsonl", "train", index=0)


def test_s3_without_credentials_says_which_variables_to_set(s3, monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(PermissionError, match=r"ingest\.sources\[1\]\.path: no credentials.*AWS_ACCESS_KEY_ID") as err:
        read_source("x", "alpaca_json", f"s3://{BUCKET}/alpaca.json", "train", index=1)
    assert SECRET not in str(err.value)


def test_a_resumable_stage_identifies_s3_objects_by_size_and_etag(s3):
    """resume.identity: a rewritten object changes the fingerprint, so a killed ingest does not resume over it."""
    import boto3

    from lessismore.resume import identity

    glob = identity(f"s3://{BUCKET}/se/*/Posts.xml")
    assert [(f, n) for f, n, _ in glob] == [
        (f"{BUCKET}/se/cooking/Posts.xml", len(FILES["se/cooking/Posts.xml"])),
        (f"{BUCKET}/se/stem/Posts.xml", len(FILES["se/stem/Posts.xml"])),
    ]
    before = identity(f"s3://{BUCKET}/wikihow.csv")
    client = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    client.put_object(Bucket=BUCKET, Key="wikihow.csv", Body=FILES["wikihow.csv"].upper().encode("utf-8"))
    after = identity(f"s3://{BUCKET}/wikihow.csv")
    assert before[0][1] == after[0][1] and before[0][2] != after[0][2]  # same size, another ETag
