"""cards/: the Hugging Face dataset and model cards, valid for the Hub's parser, every number from the metrics."""

from __future__ import annotations

from huggingface_hub import DatasetCard, ModelCard

from lessismore.cards import dataset_card, model_card, source_mix, with_eval
from tests.specs import curate_spec, repo_params, train_spec

CURATE = {
    "counts": {"candidates": 143, "selected": 96, "dropped": 47},
    "variant": "lima",
    "funnel": [
        {"step": "validated", "n": 143, "per_source": {"handwritten": 42, "se_stem": 101}},
        {"step": "selected", "n": 96, "per_source": {"handwritten": 24, "se_stem": 72}},
    ],
    "per_source": {"handwritten": {"candidates": 42, "selected": 24}, "se_stem": {"candidates": 101, "selected": 72}},
    "dropped_by_reason": {"low_score": 10, "over_quota": 37},
    "diversity": {"selected": {"mean_nearest": 0.7168}, "random": {"mean_nearest": 0.6438}},
    "rules": {
        "handwritten": "lima: no length window",
        "se_stem": "lima: response 200-4096 chars; Stack Exchange: score >= 10, impersonal, no reference to other "
        "answers",
    },
}
TRAIN = {
    "steps": 12,
    "tokens": 38326,
    "response_tokens": 31960,
    "final_loss": 2.955,
    "mean_loss_last_10": 2.8732,
    "trainable_params": 1843200,
    "precision": "fp32",
    "checkpoint": "44e0f057dddedf59",
    "base_checkpoint": "8eb767e1792d50ff",
    "dev_holdout": 0,
}
JUDGE = {
    "primary": "smollm2-135m-local",
    "counts": {"pairs": 36},
    "baselines": {"base": {"win": 0.25, "tie": 0.5, "loss": 0.25, "n": 36, "ci": {"win": [0.1, 0.4]}}},
    "reliability": {"position_consistency": 0.78},
}


def test_dataset_card_lists_sources_licenses_and_the_funnel_from_the_metrics():
    sources = repo_params().ingest.sources
    text = dataset_card(CURATE, sources, curate_spec(), seed=1234)
    card = DatasetCard(text)  # what the Hub parses
    assert card.data.size_categories == ["n<1K"] and card.data.task_categories == ["text-generation"]
    assert "96 instruction/response conversations chosen from 143" in text
    assert (
        "| handwritten | lima_jsonl | `data/sources/handwritten/train.jsonl` | CC BY 4.0 (lessismore authors) |"
        in text
    )
    assert "| 24 | 42 | 24 |" in text  # quota, candidates, selected of handwritten
    assert "| selected | 96 | 24 | 72 |" in text and "- over_quota: 37" in text
    assert "`test_prompts` (test" in text  # the eval sources it was decontaminated against
    assert "seed 1234" in text and "0.717" in text and "0.644" in text
    assert "- handwritten: lima: no length window\n- se_stem: lima: response 200-4096 chars; Stack Exchange" in text


def test_model_card_has_hub_metadata_training_params_and_lineage():
    params = repo_params()
    mix = source_mix(["se_stem"] * 72 + ["handwritten"] * 24)
    text = model_card(
        experiment="demo", base=params.model, spec=train_spec(), metrics=TRAIN, mix=mix, dataset_md5="ab" * 16
    )
    card = ModelCard(text)
    assert card.data.base_model == "HuggingFaceTB/SmolLM2-135M-Instruct" and card.data.license == "apache-2.0"
    assert card.data.library_name == "peft" and card.data.datasets == ["lessismore/demo-curated"]
    assert "96 examples from `data/curated/train.jsonl`" in text and "| se_stem | 72 |" in text
    assert (
        "| learning rate | 0.0002 -> 2e-05, linear, no warmup |" in text and "| batch | 4 x 2 accumulation |" in text
    )
    assert "12 optimizer steps over 38326 tokens" in text and "final loss 2.955" in text
    assert "`44e0f057dddedf59`" in text and "`8eb767e1792d50ff`" in text and "ab" * 16 in text


def test_the_published_card_carries_the_test_results_as_a_model_index():
    params = repo_params()
    text = model_card(
        experiment="demo", base=params.model, spec=train_spec(), metrics=TRAIN, mix={"x": 1}, dataset_md5="0"
    )
    published = ModelCard(with_eval(text, JUDGE))
    results = {r.metric_type: r.metric_value for r in published.data.eval_results}
    assert results == {"win_rate": 0.25, "tie_rate": 0.5, "loss_rate": 0.25}
    assert "| base | 25% (95% CI 10%-40%) | 50% | 25% | 36 |" in published.text and "78%" in published.text
    assert with_eval(text, {}) == text  # nothing judged: the card as it was
