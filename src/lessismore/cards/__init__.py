"""Hugging Face model and dataset cards, written by the stages that make what they describe.

- curate writes data/curated/README.md (`dataset_card`): the sources with their formats and licenses, the funnel
  from candidates to the selection, why examples were dropped, and how to reproduce the set.
- train writes models/finetuned/README.md (`model_card`): YAML metadata (base_model, license, library, datasets), the
  curated set's size and source mix, the training params and results, and the lineage hashes.
- report writes reports/model_card.md (`with_eval`): the same card with the test results of metrics/judge.json as a
  model-index (the judging runs on the finished checkpoint, so they cannot be in models/finetuned itself; DVC forbids a
  later stage to write into an earlier stage's output). Upload models/finetuned with that file as its README.md.
The YAML goes through huggingface_hub's card classes, so the Hub reads it as it reads any card; the text is a Jinja
template in cards/templates/. Every number on a card comes from the metrics files, never recomputed.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lessismore.config import Curate, Model, Source, Train

TEMPLATES = Path(__file__).parent / "templates"


def _size_category(n: int) -> str:
    """The Hub's size_categories bucket for `n` rows.

    >>> _size_category(96), _size_category(1000), _size_category(52000)
    ('n<1K', '1K<n<10K', '10K<n<100K')
    """
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "n>1M"


def _hub_license(licenses: list[str]) -> str:
    """One Hub license id when every source shares an SPDX-like one; otherwise "other" (the text lists each)."""
    unique = sorted(set(licenses))
    return unique[0].lower() if len(unique) == 1 and " " not in unique[0] else "other"


def dataset_card(metrics: dict[str, Any], sources: tuple[Source, ...], spec: Curate, *, seed: int) -> str:
    """data/curated/README.md from metrics/curate.json (`metrics`), the ingest sources and the curate params."""
    from huggingface_hub import DatasetCard, DatasetCardData

    train = [s for s in sources if s.split == "train"]
    selected = metrics["counts"]["selected"]
    data = DatasetCardData(
        pretty_name="lessismore curated training set",
        license=_hub_license([s.license for s in train]),
        task_categories=["text-generation"],
        size_categories=[_size_category(selected)],
        tags=["lima", "instruction-tuning", "sft", "lessismore", f"curate-{metrics['variant']}"],
    )
    per_source = metrics["per_source"]
    rows = [
        {"name": s.name, "format": s.format, "path": s.path, "license": s.license, "quota": s.quota or "none"}
        | per_source.get(s.name, {"candidates": 0, "selected": 0})
        for s in train
    ]
    card = DatasetCard.from_template(
        data,
        template_path=str(TEMPLATES / "dataset_card.md.j2"),
        metrics=metrics,
        sources=rows,
        eval_sources=[s for s in sources if s.split != "train"],
        spec=spec,
        seed=seed,
    )
    return str(card)


def source_mix(origins: list[str]) -> dict[str, int]:
    """Examples per source, most first (then by name).

    >>> source_mix(["se", "hand", "se"])
    {'se': 2, 'hand': 1}
    """
    return dict(sorted(Counter(origins).items(), key=lambda kv: (-kv[1], kv[0])))


def model_card(
    *,
    experiment: str,
    base: Model,
    spec: Train,
    metrics: dict[str, Any],
    mix: dict[str, int],
    dataset_md5: str,
) -> str:
    """models/finetuned/README.md from the train params (`spec`), metrics/train.json (`metrics`) and the curated set's
    source mix (`mix`, from data/curated/train.jsonl whose md5 is `dataset_md5`)."""
    from huggingface_hub import ModelCard, ModelCardData

    data = ModelCardData(
        model_name=experiment,
        base_model=base.hub_id or None,
        license=base.license,
        library_name="peft" if spec.method == "lora" else "transformers",
        pipeline_tag="text-generation",
        datasets=[f"lessismore/{experiment}-curated"],
        tags=["lima", "sft", "lessismore", spec.method],
    )
    card = ModelCard.from_template(
        data,
        template_path=str(TEMPLATES / "model_card.md.j2"),
        experiment=experiment,
        base=base,
        spec=spec,
        metrics=metrics,
        mix=mix,
        examples=sum(mix.values()),
        dataset_md5=dataset_md5,
    )
    return str(card)


def with_eval(card_text: str, judge: dict[str, Any]) -> str:
    """The card `card_text` with metrics/judge.json's headline (primary judge, each baseline) as a model-index and
    an Evaluation section; the card as it is when nothing was judged."""
    from huggingface_hub import EvalResult, ModelCard

    card = ModelCard(card_text)
    n_prompts = judge.get("counts", {}).get("pairs", 0)
    results, lines = [], []
    for name, b in judge.get("baselines", {}).items():
        for outcome in ("win", "tie", "loss"):
            if b.get(outcome) is None:
                continue
            results.append(
                EvalResult(
                    task_type="text-generation",
                    dataset_type="lessismore/test-prompts",
                    dataset_name=f"held-out test prompts ({b['n']} pairs)",
                    dataset_split="test",
                    metric_type=f"{outcome}_rate",
                    metric_name=f"{outcome} rate vs {name} (judge: {judge['primary']})",
                    metric_value=b[outcome],
                )
            )
        lo, hi = b.get("ci", {}).get("win") or (None, None)
        ci = f" (95% CI {lo:.0%}-{hi:.0%})" if lo is not None else ""
        lines.append(
            f"| {name} | {_pct(b.get('win'))}{ci} | {_pct(b.get('tie'))} | {_pct(b.get('loss'))} | {b['n']} |"
        )
    if not results:
        return card_text
    card.data.eval_results = results
    table = "| baseline | win | tie | loss | pairs |\n|---|---|---|---|---|\n" + "\n".join(lines)
    rel = judge.get("reliability", {})
    consistency = rel.get("position_consistency")
    note = (
        f"\nThe judge agreed with itself on {consistency:.0%} of the pairs shown in both orders."
        if consistency is not None
        else ""
    )
    card.text += (
        f"\n## Evaluation\n\nPairwise judging (LIMA's protocol, both orders) on {n_prompts} held-out test pairs by "
        f"`{judge['primary']}`, the primary judge, against each baseline:\n\n{table}\n{note}\n"
    )
    return str(card)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.0%}"
