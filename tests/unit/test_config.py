"""params.yaml -> typed config: every shipped file loads; every problem is reported at once, with its fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lessismore.config import ConfigError, Params, load_params, merge, parse_params, read_yaml

REPO = Path(__file__).resolve().parents[2]
PROFILES = sorted((REPO / "profiles").glob("*.yaml"))


def test_shipped_params_load():
    params = load_params(REPO / "params.yaml")
    assert isinstance(params, Params)
    assert params.generate.top_p == 0.9 and params.generate.temperature == 0.7  # LIMA decoding
    assert params.generate.repetition_penalty == 1.2


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.stem)
def test_every_profile_merges_and_loads(profile):
    params = load_params(REPO / "params.yaml", profile)
    assert isinstance(params, Params)


def test_lima_profile_has_the_papers_settings():
    p = load_params(REPO / "params.yaml", REPO / "profiles" / "lima.yaml")
    assert (p.train.lr, p.train.lr_end, p.train.epochs) == (1e-5, 1e-6, 15)
    assert (p.train.adam_beta1, p.train.adam_beta2, p.train.weight_decay) == (0.9, 0.95, 0.1)
    assert p.train.batch_size * p.train.grad_accum == 32 and p.train.max_tokens == 2048
    assert (p.curate.budget, p.curate.min_response_chars, p.curate.max_response_chars) == (1000, 1200, 4096)


def test_params_are_frozen():
    params = load_params(REPO / "params.yaml")
    with pytest.raises(AttributeError):
        params.train.lr = 1.0  # type: ignore[misc]


def _base() -> dict:
    return read_yaml(REPO / "params.yaml")


def test_all_errors_reported_together_with_fixes():
    data = _base()
    data["train"]["lr"] = "1e-5"  # YAML's classic: a string, not a float
    data["train"]["epochz"] = 3
    del data["judge"]["judges"][0]["name"]
    data["ingest"]["sources"][0]["format"] = "xml"
    with pytest.raises(ConfigError) as err:
        parse_params(data)
    problems = err.value.problems
    assert len(problems) == 4
    text = str(err.value)
    assert "train.lr: expected float" in text and "write 1.0e-5" in text
    assert "train.epochz: unknown key; did you mean 'epochs'?" in text
    assert "judge.judges[0].name: missing" in text
    assert "ingest.sources[0].format: 'xml' is not one of" in text


def test_semantic_checks_name_key_and_fix():
    data = _base()
    test_source = next(i for i, s in enumerate(data["ingest"]["sources"]) if s["split"] == "test")
    data["ingest"]["sources"][test_source]["quota"] = 3
    data["ingest"]["sources"][0]["quota"] = -1
    data["curate"] |= {"variant": "single_source", "single_source": "nope", "site_temperature": 0}
    data["curate"]["near_dup"] = {"threshold": 1.5}
    data["generate"]["top_p"] = 1.5
    with pytest.raises(ConfigError) as err:
        parse_params(data)
    text = str(err.value)
    assert f"ingest.sources[{test_source}].quota: only train sources are curated" in text
    assert "ingest.sources[0].quota: must be >= 0" in text
    assert "curate.single_source: 'nope' is not a train source" in text
    assert "curate.near_dup.threshold: must be a Jaccard similarity" in text
    assert "curate.site_temperature: must be > 0" in text
    assert "generate.top_p: must be in (0, 1]" in text


def test_ints_accepted_where_floats_expected_but_not_bools():
    data = _base()
    data["train"]["weight_decay"] = 0
    assert parse_params(data).train.weight_decay == 0.0
    data["train"]["epochs"] = True
    with pytest.raises(ConfigError, match="train.epochs: expected int, got bool"):
        parse_params(data)


def test_merge_replaces_lists_and_clears_with_empty_mapping():
    assert merge({"a": [1, 2], "m": {"x": 1}}, {"a": [3], "m": {}}) == {"a": [3], "m": {}}


def test_missing_file_says_where(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_params(tmp_path / "params.yaml")


def test_top_level_must_be_mapping(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump([1, 2]))
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_params(path)


def test_judge_entries_are_checked_by_name_and_key():
    data = _base()
    first = data["judge"]["judges"][0]
    data["judge"]["judges"] = [
        first,
        {**first, "calibrate": True, "mode": "generate"},
        {"name": "remote", "backend": "openai", "model": ""},
    ]
    data["judge"] |= {"primary": "nobody", "bootstrap": 200}
    data["train"] |= {"select": "judge"}
    with pytest.raises(ConfigError) as err:
        parse_params(data)
    text = str(err.value)
    assert f"two judges are named {first['name']!r}" in text and "judge.primary: 'nobody' is not a judge" in text
    assert "judge.bootstrap: use at least 1000" in text and "judge.judges[1].calibrate: only applies" in text
    assert "judge.judges[2].model: backend openai needs" in text and "train.select_judge: select judge needs" in text
