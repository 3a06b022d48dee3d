"""Which test prompts an evaluation runs on: all of them, or the subset params eval.prompts names.

generate and judge both read eval.prompts, so a first pass on 40 of LIMA's 300 prompts, before paying for all of
them, is a params change: DVC records it in the lineage and re-runs what it changes, and the metrics say how many
prompts of how many were used and why. The subsets:
  {ids: [lima-16, lima-83]}  the prompts whose file id ("id" in a prompts_jsonl line) or content id is listed;
  {first: 40}                the first 40 in file order;
  {sample: 40, seed: 7}      40 drawn at random, the same 40 for the same seed and test set, kept in file order.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lessismore.errors import BadValue, NotFound
from lessismore.records import Prompt, read_parquet

if TYPE_CHECKING:
    from lessismore.config import PromptSubset


def read_test_prompts(path: str | Path) -> list[Prompt]:
    """The test split of validate's prompts file: what generate@, import@ and judge evaluate (before eval.prompts)."""
    if not Path(path).exists():
        raise NotFound(f"{path} not found: run `dvc repro validate` first")
    test = [p for p in read_parquet(path, Prompt) if p.split == "test"]
    if not test:
        raise NotFound(f"{path}: no prompts with split 'test'; check the test source in params ingest.sources")
    return test


def choose_prompts(prompts: Sequence[Prompt], subset: str | PromptSubset) -> list[Prompt]:
    """The prompts `subset` names, in the order of `prompts`; "all" keeps every one. Asking for prompts the test
    set does not have (an unknown id, more than there are) is a BadValue naming the key and what there is."""
    if subset == "all":
        return list(prompts)
    n = len(prompts)
    if subset.ids is not None:
        known = {key: i for i, p in enumerate(prompts) for key in (p.meta.get("id"), p.id) if key is not None}
        missing = [i for i in subset.ids if str(i) not in known]
        if missing:
            examples = [p.meta.get("id", p.id) for p in prompts[:3]]
            raise BadValue(
                f"eval.prompts.ids: {missing} are not test prompts; use the file's own ids or content ids "
                f"(such as {examples}), or eval.prompts: all"
            )
        wanted = {known[str(i)] for i in subset.ids}
        return [p for i, p in enumerate(prompts) if i in wanted]
    k = subset.first if subset.first is not None else subset.sample
    if k > n:
        key = "first" if subset.first is not None else "sample"
        raise BadValue(f"eval.prompts.{key}: {k} prompts asked for, the test set has {n}; ask for {n} or fewer")
    if subset.first is not None:
        return list(prompts[:k])
    chosen = np.random.default_rng(subset.seed).choice(n, size=k, replace=False)
    return [prompts[i] for i in sorted(chosen.tolist())]


def describe(subset: str | PromptSubset, chosen: int, total: int) -> dict[str, Any]:
    """What metrics record about the subset: the rule as params wrote it, and how many of how many prompts.

    >>> describe("all", 30, 30)
    {'rule': 'all', 'prompts': 30, 'of': 30}
    """
    rule = subset if isinstance(subset, str) else {k: v for k, v in vars(subset).items() if v is not None}
    if isinstance(rule, dict) and "ids" in rule:
        rule["ids"] = list(rule["ids"])
    return {"rule": rule, "prompts": chosen, "of": total}
