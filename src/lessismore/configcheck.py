"""Semantic checks on params: what the types in config.py alone cannot say (names unique, ranges, cross-references).

Called once by config.parse_params after the YAML is built into dataclasses; every problem is returned, each naming
its key and the fix, and config raises them together as one ConfigError.
"""

from __future__ import annotations

from lessismore.config import Judge, Params


def check(p: Params) -> list[str]:
    errs = []
    names = [s.name for s in p.ingest.sources]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        errs.append(f"ingest.sources: two sources are named {dup!r}; give each a unique name")
    for split in ("train", "test"):
        if not any(s.split == split for s in p.ingest.sources):
            errs.append(f"ingest.sources: no source with split: {split}; add one (the pipeline needs both)")
    for i, s in enumerate(p.ingest.sources):
        if s.quota < 0:
            errs.append(f"ingest.sources[{i}].quota: must be >= 0 (0: the source shares what is left of the budget)")
        if s.quota and s.split != "train":
            errs.append(f"ingest.sources[{i}].quota: only train sources are curated; remove it from {s.name!r}")
    train_names = [s.name for s in p.ingest.sources if s.split == "train"]
    if p.curate.variant == "single_source" and p.curate.single_source not in train_names:
        errs.append(
            f"curate.single_source: {p.curate.single_source!r} is not a train source; use one of {train_names}"
        )
    if not 0 < p.curate.near_dup.threshold <= 1:
        errs.append("curate.near_dup.threshold: must be a Jaccard similarity in (0, 1]")
    if p.curate.near_dup.shingle < 1 or p.curate.near_dup.num_perm < 2:
        errs.append("curate.near_dup: shingle must be >= 1 word and num_perm >= 2 (default 5 and 128)")
    if p.curate.decontam.ngram < 1 or p.curate.decontam.min_words < 1:
        errs.append("curate.decontam: ngram and min_words must be >= 1 (lm-eval-harness: 13)")
    if p.curate.site_temperature <= 0:
        errs.append("curate.site_temperature: must be > 0 (LIMA: 3; 1 samples sites in proportion to their size)")
    if p.curate.budget <= 0:
        errs.append("curate.budget: must be > 0 (LIMA used 1000)")
    if p.curate.min_response_chars > p.curate.max_response_chars:
        errs.append("curate.min_response_chars: larger than curate.max_response_chars; swap them")
    if not 0 <= p.validate.max_quarantine_share <= 1:
        errs.append("validate.max_quarantine_share: must be a share between 0 and 1")
    if not 0 < p.generate.top_p <= 1:
        errs.append("generate.top_p: must be in (0, 1] (LIMA: 0.9)")
    if not 0 <= p.train.residual_dropout < 1:
        errs.append("train.residual_dropout: must be in [0, 1) (LIMA: 0.3, 0.2 for small models)")
    if p.train.select == "dev_loss" and p.train.dev_holdout < 1:
        errs.append("train.dev_holdout: select dev_loss needs held-out examples to score; set it >= 1 (LIMA: 50)")
    dev_judge = p.train.select_judge
    if p.train.select == "judge" and dev_judge is None:
        errs.append("train.select_judge: select judge needs a judge entry (backend, model, ...) like judge.judges[0]")
    if dev_judge is not None and dev_judge.backend == "local" and dev_judge.model == "finetuned":
        errs.append(
            "train.select_judge.model: the model in training cannot judge its own epochs; use base or a served one"
        )
    if p.train.checkpoint_every < 0:
        errs.append("train.checkpoint_every: must be >= 0 (0: checkpoint at epoch ends only)")
    for e in p.train.select_epochs:
        if not 1 <= e <= p.train.epochs:
            errs.append(f"train.select_epochs: epoch {e} is not in 1..train.epochs ({p.train.epochs})")
    if p.generate.backend == "openai" and p.generate.openai.model and len(p.generate.models) > 1:
        errs.append(
            "generate.openai.model: names one served model but generate.models lists several; leave it empty "
            "(each checkpoint is then requested by its path) or list one model"
        )
    taken = set(p.generate.models)
    for i, b in enumerate(p.generate.baselines):
        if b.name in taken:
            errs.append(f"generate.baselines[{i}].name: {b.name!r} is already a model name; give it another")
        taken.add(b.name)
    if p.train.lr_end > p.train.lr:
        errs.append("train.lr_end: larger than train.lr; the schedule decays from lr to lr_end")
    if p.model.source == "gguf_package" and not (p.model.package and p.model.gguf_file):
        errs.append("model: source gguf_package needs model.package and model.gguf_file")
    if p.model.source == "local" and not p.model.path:
        errs.append("model.path: source local needs a directory (or a cached HF id)")
    errs += _check_judge(p.judge)
    return errs


def _check_judge(j: Judge) -> list[str]:
    errs = []
    if j.candidate in j.baselines:
        errs.append("judge.baselines: contains the candidate itself; list only the models to compare against")
    names = [s.name for s in j.judges]
    if not names:
        errs.append("judge.judges: empty; list at least one judge (backend, model, template)")
    for dup in sorted({n for n in names if names.count(n) > 1}):
        errs.append(f"judge.judges: two judges are named {dup!r}; give each a unique name")
    if j.primary and j.primary not in names:
        errs.append(f"judge.primary: {j.primary!r} is not a judge; use one of {names}")
    if j.bootstrap < 1000:
        errs.append("judge.bootstrap: use at least 1000 resamples for a 95% interval")
    if j.injection.pairs < 0:
        errs.append("judge.injection.pairs: must be >= 0 (0 turns the injection set off)")
    for i, s in enumerate(j.judges):
        if s.backend == "openai" and not s.model:
            errs.append(f"judge.judges[{i}].model: backend openai needs the served model name")
        if s.calibrate and s.mode != "logprobs":
            errs.append(f"judge.judges[{i}].calibrate: only applies to mode logprobs")
        if s.temperature < 0 or s.max_new_tokens < 1 or s.batch_size < 1 or s.context_tokens < 0:
            errs.append(f"judge.judges[{i}]: temperature, context_tokens >= 0 and max_new_tokens, batch_size >= 1")
        if s.price.input_per_mtok < 0 or s.price.output_per_mtok < 0:
            errs.append(f"judge.judges[{i}].price: prices are >= 0 dollars per million tokens")
    return errs
