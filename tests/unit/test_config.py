"""params.yaml -> typed config: every shipped file loads; every problem is reported at once, with its fix."""

from __future__ import annotations

import typing
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
    assert p.curate.budget == 1000
    # LIMA's length window was for Stack Exchange answers; its wikiHow and Reddit examples were not length-filtered
    windows = p.curate.response_chars
    assert (windows["stackexchange_xml"], windows["wikihow_csv"], windows["writingprompts_csv"]) == (
        (1200, 4096),
        None,
        None,
    )


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
    data["curate"]["near_dup"]["threshold"] = 1.5
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
        {**first, "name": "remote", "backend": "openai", "model": "", "calibrate": False},
    ]
    data["judge"] |= {"primary": "nobody", "bootstrap": 200}
    data["train"] |= {"select": "judge"}
    with pytest.raises(ConfigError) as err:
        parse_params(data)
    text = str(err.value)
    assert f"two judges are named {first['name']!r}" in text and "judge.primary: 'nobody' is not a judge" in text
    assert "judge.bootstrap: use at least 1000" in text and "judge.judges[1].calibrate: only applies" in text
    assert "judge.judges[2].model: backend openai needs" in text and "train.select_judge: select judge needs" in text
    assert "judge.judges[2].openai: backend openai needs it" in text


def test_five_broken_edits_give_five_messages_at_once(tmp_path, monkeypatch):
    """A type error does not hide a range error, and missing files are named with the rest, before any work."""
    monkeypatch.chdir(REPO)  # source paths are relative to the repository root
    data = _base()
    data["train"]["lr"] = "2e-4x"  # a type error
    data["curate"]["budget"] = -5  # a range error, next to the type error
    data["generate"]["top_p"] = 1.9
    data["ingest"]["sources"][0]["path"] = "data/sources/nowhere/Posts.xml"  # a missing file
    data["ingest"]["sources"][1]["path"] = "data/sources/nosuch/*/Posts.xml"  # a glob that matches nothing
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as err:
        load_params(path)
    assert len(err.value.problems) == 5, err.value
    text = str(err.value)
    assert "train.lr: expected float, got str '2e-4x'" in text and "curate.budget: must be > 0" in text
    assert "generate.top_p: must be in (0, 1]" in text
    assert "ingest.sources[0].path: data/sources/nowhere/Posts.xml does not exist" in text
    assert "ingest.sources[1].path: the glob data/sources/nosuch/*/Posts.xml matches no file" in text


def test_a_stage_checks_only_the_files_it_reads(tmp_path, monkeypatch):
    """The judge stage on a GPU worker must not fail because an ingest source lives on another machine."""
    monkeypatch.chdir(REPO)
    data = _base()
    data["ingest"]["sources"][0]["path"] = "dumps/elsewhere/Posts.xml"
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    assert load_params(path, stage="judge").judge.primary
    with pytest.raises(ConfigError, match="dumps/elsewhere/Posts.xml does not exist"):
        load_params(path, stage="ingest")


def test_config_has_no_defaults_but_none_for_keys_that_apply_only_sometimes():
    """params.yaml shows every value: a field's only allowed default is None (a key another key selects, e.g.
    model.path for model.source local), and configcheck requires it where it applies."""
    import dataclasses

    from lessismore import config

    seen, found = set(), []

    def walk(cls):
        if cls in seen:
            return
        seen.add(cls)
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.default_factory is not dataclasses.MISSING or f.default not in (dataclasses.MISSING, None):
                found.append(f"{cls.__name__}.{f.name}")
            for arg in (hints[f.name], *typing.get_args(hints[f.name])):
                if dataclasses.is_dataclass(arg):
                    walk(arg)

    walk(config.Params)
    assert len(seen) > 15 and found == []


def test_a_key_that_applies_is_required_and_one_that_does_not_is_refused():
    data = _base()
    data["model"] |= {"source": "local"}  # needs model.path; package and gguf_file no longer apply
    data["train"] |= {
        "select_decoding": {
            "max_new_tokens": 8,
            "top_p": 0.9,
            "temperature": 0.7,
            "repetition_penalty": 1.2,
            "batch_size": 2,
        }
    }
    data["ingest"]["sources"][0]["hf_split"] = "train"  # not an hf:// source
    del data["ingest"]["sources"][1]["quota"]  # a train source must say its quota
    del data["ingest"]["sources"][2]["curated"]  # ... and whether people chose its rows
    data["ingest"]["sources"][3] |= {"curated": True, "rules": {"min_respons_chars": 0}}
    data["ingest"]["sources"][4]["curated"] = False  # a dev source is not curated
    data["curate"]["response_chars"] |= {"wikihow": [0, 10], "stackexchange_xml": [500, 100]}
    with pytest.raises(ConfigError) as err:
        parse_params(data)
    text = str(err.value)
    assert "model.path: model.source local needs it" in text
    assert "model.package: only model.source gguf_package reads it; remove it (source is local)" in text
    assert "train.select_decoding: only train.select judge reads it" in text
    assert "ingest.sources[0].hf_split: only hf:// sources read it" in text
    assert "ingest.sources[1].quota: missing" in text
    assert "ingest.sources[2].curated: missing" in text
    assert "ingest.sources[3].rules.min_respons_chars: unknown key; did you mean 'min_response_chars'?" in text
    assert "ingest.sources[4].curated: only train sources are curated" in text
    assert "curate.response_chars.wikihow: 'wikihow' is not one of" in text and "did you mean 'wikihow_csv'?" in text
    assert "curate.response_chars.stackexchange_xml: expected [min, max] with 0 <= min <= max" in text


def test_a_stage_that_reads_an_undeclared_key_fails():
    """dvc.yaml's params lists stay exact: reading a key outside the stage's contract is a bug caught at once."""
    from lessismore.config import UndeclaredParam

    params = load_params(REPO / "params.yaml", stage="curate")
    assert params.curate.budget > 0 and params.base.seed == 1234 and params.ingest.sources
    with pytest.raises(UndeclaredParam, match=r"stage 'curate' read params base.experiment.*dvc.yaml"):
        _ = params.base.experiment
    with pytest.raises(UndeclaredParam, match="train.lr"):
        _ = params.train.lr


def test_each_baseline_is_a_named_file_that_exists(tmp_path, monkeypatch):
    """generate.baselines is a mapping name -> file: the name becomes a DVC stage (import@<name>) and a file name."""
    data = read_yaml(REPO / "params.yaml")
    (tmp_path / "data" / "baselines").mkdir(parents=True)
    (tmp_path / "data" / "baselines" / "gpt4.json").write_text("[]")
    (tmp_path / "elsewhere.json").write_text("[]")
    data["generate"]["baselines"] = {
        "gpt4": {"format": "alpaca_eval", "path": "data/baselines/gpt4.json"},
        "llama-2.7b": {"format": "alpaca_eval", "path": "elsewhere.json"},  # anywhere: import@ depends on the file
        "gone": {"format": "alpaca_eval", "path": "data/baselines/gone.json"},
        "base": {"format": "alpaca_eval", "path": "elsewhere.json"},
        "gpt 4/turbo": {"format": "alpaca_eval", "path": "elsewhere.json"},
    }
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as err:
        parse_params(data, paths=("import",))
    text = str(err.value)
    assert "generate.baselines.gpt4" not in text and "generate.baselines.llama-2.7b" not in text
    assert "generate.baselines.gone.path: data/baselines/gone.json is not a file" in text
    assert "generate.baselines.base: 'base' is already a model name; give it another" in text
    assert "generate.baselines.gpt 4/turbo: 'gpt 4/turbo' names a stage (import@gpt 4/turbo) and a file" in text


def test_the_model_in_training_cannot_be_a_judge():
    """A judge that changed with every run would make their win rates incomparable; the DAG keeps judge off it."""
    data = read_yaml(REPO / "params.yaml")
    data["judge"]["judges"][0]["model"] = "finetuned"
    with pytest.raises(ConfigError) as err:
        parse_params(data)
    assert (
        "judge.judges[0].model: the model in training cannot judge; use base, a model folder or a served one"
        in str(err.value)
    )


def test_the_scores_section_is_checked_by_key():
    data = read_yaml(REPO / "params.yaml")
    data["curate"]["variant"] = "scored"
    scores = data["curate"]["scores"]
    scores["weights"] = {"quality": 0.0, "ifd": 0.0}
    scores |= {"min_distance": 3.0, "per_pick": -1, "ifd_max": 0.0}
    scores["ifd"]["model"] = "finetuned"
    scores["rater"]["backend"] = "openai"
    scores["rater"]["weights"] = 1  # a key a rater does not have
    with pytest.raises(ConfigError) as err:
        parse_params(data)
    text = str(err.value)
    assert "curate.scores.rater.weights: unknown key" in text
    data["curate"]["scores"]["rater"].pop("weights")
    with pytest.raises(ConfigError) as err:
        parse_params(data)
    text = str(err.value)
    assert "curate.scores.weights: every weight is 0" in text
    assert "curate.scores.min_distance: a cosine distance in [0, 2]" in text
    assert "curate.scores.per_pick: must be >= 0" in text and "curate.scores.ifd_max: must be > 0" in text
    assert "curate.scores.ifd.model: the model trained on the selection cannot score it" in text
    assert "curate.scores.rater.openai: backend openai needs it" in text


def test_a_panel_names_at_least_two_judges_that_exist():
    data = read_yaml(REPO / "params.yaml")
    data["judge"]["panel"] = {"judges": ["smollm2-135m-local", "nope"], "combine": "mean"}
    with pytest.raises(ConfigError) as err:
        parse_params(data)
    assert "judge.panel.judges: 'nope' is not a judge" in str(err.value)
    data["judge"]["panel"] = {"judges": ["smollm2-135m-local"], "combine": "majority"}
    with pytest.raises(ConfigError) as err:
        parse_params(data)
    assert "name at least two different judges" in str(err.value)
