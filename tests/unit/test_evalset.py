"""evalset: the test prompts an evaluation runs on (eval.prompts), and its params checks."""

from __future__ import annotations

import pytest

from lessismore.config import ConfigError, PromptSubset, parse_params, read_yaml
from lessismore.errors import BadValue
from lessismore.evalset import choose_prompts, describe
from lessismore.records import Origin, Prompt
from tests.specs import REPO

PROMPTS = [
    Prompt(f"Prompt number {i}?", "test", Origin("test", "t.jsonl", str(i)), meta={"id": f"lima-{i}"})
    for i in range(1, 11)
]


def test_all_keeps_every_prompt_and_first_keeps_file_order():
    assert choose_prompts(PROMPTS, "all") == PROMPTS
    assert [p.meta["id"] for p in choose_prompts(PROMPTS, PromptSubset(first=3))] == ["lima-1", "lima-2", "lima-3"]


def test_ids_match_the_files_own_ids_or_content_ids_and_keep_file_order():
    chosen = choose_prompts(PROMPTS, PromptSubset(ids=("lima-7", PROMPTS[1].id, "lima-4")))
    assert [p.meta["id"] for p in chosen] == ["lima-2", "lima-4", "lima-7"]
    with pytest.raises(BadValue, match=r"eval.prompts.ids: \['lima-99'\] are not test prompts.*'lima-1'"):
        choose_prompts(PROMPTS, PromptSubset(ids=("lima-4", "lima-99")))


def test_a_sample_is_the_same_for_the_same_seed_and_another_for_another():
    a = choose_prompts(PROMPTS, PromptSubset(sample=4, seed=7))
    assert a == choose_prompts(PROMPTS, PromptSubset(sample=4, seed=7)) and len(a) == 4
    assert a == sorted(a, key=PROMPTS.index)  # kept in file order
    draws = {tuple(p.id for p in choose_prompts(PROMPTS, PromptSubset(sample=4, seed=s))) for s in range(5)}
    assert len(draws) > 1


def test_asking_for_more_prompts_than_there_are_names_the_key_and_the_count():
    with pytest.raises(BadValue, match="eval.prompts.sample: 11 prompts asked for, the test set has 10"):
        choose_prompts(PROMPTS, PromptSubset(sample=11, seed=1))
    with pytest.raises(BadValue, match="eval.prompts.first: 12 prompts asked for"):
        choose_prompts(PROMPTS, PromptSubset(first=12))


def test_describe_records_the_rule_as_written():
    assert describe(PromptSubset(sample=40, seed=7), 40, 300) == {
        "rule": {"sample": 40, "seed": 7},
        "prompts": 40,
        "of": 300,
    }
    assert describe(PromptSubset(ids=("a", "b")), 2, 300)["rule"] == {"ids": ["a", "b"]}


@pytest.mark.parametrize(
    ("prompts", "message"),
    [
        ({"first": 4, "sample": 3, "seed": 1}, "eval.prompts: set exactly one of ids, first, sample"),
        ({"sample": 3}, "eval.prompts.seed: a sample needs its seed"),
        ({"first": 3, "seed": 1}, "eval.prompts.seed: a sample needs its seed, and only a sample reads one"),
        ({"first": 0}, "eval.prompts.first: must be >= 1"),
        ({"ids": ["a", "a"]}, "eval.prompts.ids: list each prompt id once"),
        ({"frist": 3}, "eval.prompts.frist: unknown key; did you mean 'first'?"),
        ("al", "eval.prompts: 'al' is not one of ['all']; did you mean 'all'?"),
    ],
)
def test_a_bad_subset_is_a_config_error_naming_the_key(prompts, message):
    data = read_yaml(REPO / "params.yaml")
    data["eval"] = {"prompts": prompts}
    with pytest.raises(ConfigError) as err:
        parse_params(data)
    assert message in str(err.value)


def test_params_read_a_subset():
    data = read_yaml(REPO / "params.yaml")
    data["eval"] = {"prompts": {"sample": 40, "seed": 7}}
    assert parse_params(data).eval.prompts == PromptSubset(sample=40, seed=7)
    assert parse_params(read_yaml(REPO / "params.yaml")).eval.prompts == "all"


def test_judge_compares_only_systems_that_generate_answers_for():
    data = read_yaml(REPO / "params.yaml")
    data["judge"] |= {"candidate": "gpt4", "baselines": ["base"]}
    with pytest.raises(ConfigError) as err:
        parse_params(data)
    assert "judge.candidate: 'gpt4' has no answers; add it to generate.models or generate.baselines" in str(err.value)
