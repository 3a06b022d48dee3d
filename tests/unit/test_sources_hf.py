"""hf:// sources, offline: a hub-cache snapshot, the datasets Arrow cache, local copies, and the clear errors.

Each test gets its own HF_HOME under tmp_path and builds there the layout a connected machine leaves behind.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from lessismore.records import Dropped, Example, Message, Origin, Prompt
from tests.specs import read_source

ALPACA = {
    "instruction": ["Add the numbers.", "Say hi.", "Name a colour."],
    "input": ["2, 3", "", ""],
    "output": ["5", "Hi!", None],  # a null output: missing_field, as in a file
}


@pytest.fixture
def hf_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "hf_home"
    monkeypatch.setenv("HF_HOME", str(home))
    for name in ("HF_HUB_CACHE", "HF_DATASETS_CACHE", "HUGGINGFACE_HUB_CACHE"):
        monkeypatch.delenv(name, raising=False)
    return home


def _hub_snapshot(home: Path, repo: str, files: dict[str, dict]) -> Path:
    """The hub cache as `hf download --repo-type dataset owner/name` leaves it: refs/main -> snapshot."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    revision = "0123456789abcdef0123456789abcdef01234567"
    root = home / "hub" / f"datasets--{repo.replace('/', '--')}"
    for name, columns in files.items():
        (root / "snapshots" / revision / name).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(columns), root / "snapshots" / revision / name)
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(revision)
    return root


def _split(records):
    records = list(records)
    return [r for r in records if not isinstance(r, Dropped)], [r for r in records if isinstance(r, Dropped)]


def test_hub_id_from_the_hub_cache(hf_home):
    _hub_snapshot(hf_home, "owner/alpaca", {"data/train-00000-of-00001.parquet": ALPACA})
    kept, drops = _split(read_source("alpaca", "alpaca_json", "hf://owner/alpaca", "train", "CC", index=0))
    assert [(e.origin, e.messages) for e in kept] == [
        (
            Origin("alpaca", "hf://owner/alpaca[train]", "0", "CC"),
            (Message("user", "Add the numbers.\n\n2, 3"), Message("assistant", "5")),
        ),
        (
            Origin("alpaca", "hf://owner/alpaca[train]", "1", "CC"),
            (Message("user", "Say hi."), Message("assistant", "Hi!")),
        ),
    ]
    assert kept[0].meta == {"has_input": True, "n_turns": 2, "format": "alpaca_json", "split": "train"}
    assert [(d.reason, d.origin.row) for d in drops] == [("missing_field", "2")]
    assert drops[0].detail.startswith('hf://owner/alpaca[train] row 2: no "output"')
    assert os.environ["HF_HUB_OFFLINE"] == os.environ["HF_DATASETS_OFFLINE"] == "1"


def test_hub_id_splits_and_the_split_error(hf_home):
    prompts = {"prompt": ["Why?", "How?"], "category": ["explain", None]}
    train = {"prompt": ["Train me."], "category": ["x"]}  # the splits of one config share their columns
    files = {"data/train-00000-of-00001.parquet": train, "data/test-00000-of-00001.parquet": prompts}
    _hub_snapshot(hf_home, "owner/mixed", files)
    held_out = list(read_source("p", "prompts_jsonl", "hf://owner/mixed", "test", index=1, hf_split="test"))
    assert [(p.text, p.origin.file, p.meta) for p in held_out] == [
        ("Why?", "hf://owner/mixed[test]", {"category": "explain", "format": "prompts_jsonl", "split": "test"}),
        ("How?", "hf://owner/mixed[test]", {"format": "prompts_jsonl", "split": "test"}),
    ]
    assert all(isinstance(p, Prompt) for p in held_out)
    with pytest.raises(
        ValueError, match=r"ingest\.sources\[1\]\.hf_split: .* no split 'dev'; it has \['test', 'train'\]"
    ):
        read_source("p", "prompts_jsonl", "hf://owner/mixed", "test", index=1, hf_split="dev")
    with pytest.raises(
        ValueError, match=r"ingest\.sources\[1\]\.hf_config: cannot load hf://owner/mixed with config 'x'"
    ):
        read_source("p", "prompts_jsonl", "hf://owner/mixed", "test", index=1, hf_config="x")


def test_hub_snapshot_with_a_corrupt_file_names_the_params_key(hf_home):
    root = _hub_snapshot(hf_home, "owner/broken", {"data/train-00000-of-00001.parquet": ALPACA})
    next(root.rglob("*.parquet")).write_bytes(b"PAR1 not really parquet")
    with pytest.raises(
        ValueError, match=r"ingest\.sources\[0\]\.path: hf://owner/broken: its data files could not be read"
    ):
        read_source("a", "alpaca_json", "hf://owner/broken", "train", index=0)


def test_hub_id_from_the_datasets_arrow_cache(hf_home, tmp_path):
    """What an online `load_dataset("owner/lima")` leaves in HF_HOME/datasets: owner___lima/<config>/<version>/<sha>"""
    import datasets

    built = datasets.Dataset.from_dict({"conversations": [["Hi?", "Hello."], ["odd"]], "source": ["a", None]})
    cached = hf_home / "datasets" / "owner___lima" / "default" / "0.0.0" / "0123abcd"
    built.save_to_disk(tmp_path / "saved")
    cached.mkdir(parents=True)
    shutil.copy(next((tmp_path / "saved").glob("*.arrow")), cached / "lima-train.arrow")
    info = datasets.DatasetInfo(features=built.features, config_name="default", dataset_name="lima")
    info.splits = datasets.SplitDict({"train": datasets.SplitInfo("train", num_examples=2)})
    info.write_to_directory(cached)
    kept, drops = _split(read_source("lima", "lima_jsonl", "hf://owner/lima", "train", index=0))
    assert [(e.prompt, e.response, e.meta["source"], e.origin.row) for e in kept] == [("Hi?", "Hello.", "a", "0")]
    assert [(d.reason, d.origin.row) for d in drops] == [("odd_turns", "1")]


def test_local_directory_save_to_disk_and_data_files(tmp_path):
    import datasets

    rows = {"conversations": [[{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo"}]], "id": ["c1"]}
    datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows)}).save_to_disk(tmp_path / "saved")
    (example,) = read_source("sg", "sharegpt_jsonl", f"hf://{tmp_path / 'saved'}", "train", index=0)
    assert isinstance(example, Example) and [m.role for m in example.messages] == ["user", "assistant"]
    assert example.meta["id"] == "c1" and example.origin.file == f"hf://{tmp_path / 'saved'}[train]"

    (tmp_path / "files").mkdir()
    story = '{"prompt": "[ WP ] A dog can talk .", "story": "`` Hi , \'\' it said ."}\n'
    (tmp_path / "files" / "train.jsonl").write_text(story + '{"prompt": "[ OT ] Chat", "story": "no"}\n')
    kept, drops = _split(read_source("wp", "writingprompts_csv", f"hf://{tmp_path / 'files'}", "train", index=0))
    assert [(e.prompt, e.response, e.meta["tags"]) for e in kept] == [("A dog can talk.", '"Hi," it said.', ["WP"])]
    assert [(d.reason, d.origin.row) for d in drops] == [("not_a_prompt", "1")]


def test_not_available_offline_is_a_clear_error(hf_home, tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        read_source("lima", "lima_jsonl", "hf://GAIR/not-downloaded", "train", index=2)
    message = str(err.value)
    assert message.startswith("ingest.sources[2].path: hf://GAIR/not-downloaded is not available offline")
    assert "hf download --repo-type dataset GAIR/not-downloaded" in message and str(hf_home / "hub") in message
    (tmp_path / "empty").mkdir()
    with pytest.raises(
        FileNotFoundError, match=r"ingest\.sources\[0\]\.path: hf://.*empty is a directory without a dataset"
    ):
        read_source("x", "lima_jsonl", f"hf://{tmp_path / 'empty'}", "train", index=0)
