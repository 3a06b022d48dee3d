"""Semantic checks on params: what the types in config.py alone cannot say (names unique, ranges, cross-references,
the keys that only apply when another selects them) and the local files the params name.

Called once by config.parse_params after the YAML is built into dataclasses. Every check runs, even when other keys
failed to build: a check that touches a value that failed (yamlconfig.INVALID) is skipped, because that value has
its own error line already. Every problem is returned, each naming its key and the fix; config raises them together.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from lessismore.yamlconfig import Unchecked

if TYPE_CHECKING:
    from lessismore.config import JudgeSpec, Params, Rater, Source

Check = Callable[["Params"], Iterable[str]]
SYSTEM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # an imported system's name: a DVC stage suffix and file name


def check(p: Params) -> list[str]:
    """Every semantic problem of `p`, in a stable order."""
    return _run(CHECKS, p)


def check_paths(p: Params, sections: Iterable[str]) -> list[str]:
    """The local files that `sections` (stage names) read and that are not there; s3:// and hf:// are checked when
    they are read (they need credentials or the network).
    """
    return _run([PATHS[s] for s in sections if s in PATHS], p)


def _run(checks: Iterable[Check], p: Any) -> list[str]:
    errs: list[str] = []
    for one in checks:
        try:
            errs += list(one(p))
        except Unchecked:  # it read a value that failed to build: that value is reported already
            continue
    return errs


def _each(items: Any, check_one: Callable[[int, Any], Iterable[str]]) -> Iterable[str]:
    """check_one(i, item) for every item; an item that failed to build skips only its own checks."""
    for i, item in enumerate(items):
        try:
            yield from list(check_one(i, item))
        except Unchecked:
            continue


def _unique(names: list[str], key: str, what: str) -> Iterable[str]:
    for dup in sorted({n for n in names if names.count(n) > 1}):
        yield f"{key}: two {what} are named {dup!r}; give each a unique name"


# ----------------------------------------------------------------------------------------------------------- ingest


def _sources(p: Params) -> Iterable[str]:
    yield from _unique([s.name for s in p.ingest.sources], "ingest.sources", "sources")
    for split in ("train", "test"):
        if not any(s.split == split for s in p.ingest.sources):
            yield f"ingest.sources: no source with split: {split}; add one (the pipeline needs both)"
    yield from _each(p.ingest.sources, _source)


def _source(i: int, s: Source) -> Iterable[str]:
    key = f"ingest.sources[{i}]"
    if s.split == "train" and s.quota is None:
        yield f"{key}.quota: missing; add it (the most curated examples kept from {s.name!r}; 0: no cap)"
    if s.quota is not None and s.quota < 0:
        yield f"{key}.quota: must be >= 0 (0: no cap, the source shares what is left of the budget)"
    if s.quota is not None and s.split != "train":
        yield f"{key}.quota: only train sources are curated; remove it from {s.name!r}"
    if s.split == "train" and s.curated is None:
        yield f"{key}.curated: missing; add it (true: people chose its rows, no selection rule applies; else false)"
    for name in ("curated", "rules"):
        if getattr(s, name) is not None and s.split != "train":
            yield f"{key}.{name}: only train sources are curated; remove it from {s.name!r}"
    if s.rules is not None and s.curated:
        yield f"{key}.rules: a curated source has no selection rules to change; remove rules or set curated: false"
    hf = s.path.startswith("hf://")
    for name in ("hf_split", "hf_config"):
        value = getattr(s, name)
        if hf and value is None:
            yield f"{key}.{name}: missing; an hf:// source names its dataset {name.removeprefix('hf_')} ('' if none)"
        if not hf and value is not None:
            yield f"{key}.{name}: only hf:// sources read it; remove it from {s.name!r}"


# ------------------------------------------------------------------------------------------------------------- data


def _data(p: Params) -> Iterable[str]:
    if p.data.shard_rows < 1:
        yield "data.shard_rows: rows per Parquet shard, >= 1 (e.g. 10000)"
    if p.data.workers < 0:
        yield "data.workers: worker processes of the local engine, >= 0 (0: one a CPU core; 1: none)"


def _validate(p: Params) -> Iterable[str]:
    v = p.validate
    if v.min_chars < 0 or v.max_chars < 1:
        yield "validate.min_chars, validate.max_chars: characters, >= 0 and >= 1"
    if v.min_chars > v.max_chars:
        yield "validate.min_chars: larger than validate.max_chars; swap them"
    if not 0 <= v.max_quarantine_share <= 1:
        yield "validate.max_quarantine_share: must be a share between 0 and 1"


def _curate(p: Params) -> Iterable[str]:
    c = p.curate
    train_names = [s.name for s in p.ingest.sources if s.split == "train"]
    if c.variant == "single_source" and c.single_source not in train_names:
        yield f"curate.single_source: {c.single_source!r} is not a train source; use one of {train_names}"
    if c.budget <= 0:
        yield "curate.budget: must be > 0 (LIMA used 1000)"
    for fmt, window in c.response_chars.items():  # the keys are source formats: yamlconfig checked them
        if window is not None and (len(window) != 2 or not 0 <= window[0] <= window[1]):
            yield f"curate.response_chars.{fmt}: expected [min, max] with 0 <= min <= max, got {list(window)}"
    if c.kcenter_sample < 0:
        yield "curate.kcenter_sample: must be >= 0 (0 embeds every candidate; 20 looks at 20 per example picked)"
    if c.site_temperature <= 0:
        yield "curate.site_temperature: must be > 0 (LIMA: 3; 1 samples sites in proportion to their size)"


SCORED = ("scored", "ifd_only", "quality_only")  # the variants that select by model-based scores (curate.scores)


def _scores(p: Params) -> Iterable[str]:
    s, key = p.curate.scores, "curate.scores"
    if p.curate.variant == "scored" and not any(s.weights.values()):
        yield f"{key}.weights: every weight is 0; give quality, complexity or ifd a weight (e.g. quality: 1.0)"
    if not 0.0 <= s.min_distance <= 2.0:
        yield f"{key}.min_distance: a cosine distance in [0, 2] (DEITA: 0.1; 0 turns the check off)"
    if s.ifd_max <= 0:
        yield f"{key}.ifd_max: must be > 0 (Cherry LLM: 1.0, the prompt no longer helps)"
    if s.per_pick < 0:
        yield f"{key}.per_pick: must be >= 0 (0 scores every candidate; 3 scores 3 per example kept)"
    if s.ifd.max_tokens < 8 or s.ifd.batch_size < 1:
        yield f"{key}.ifd: max_tokens >= 8 and batch_size >= 1 (e.g. 512 and 8)"
    yield from _backend_spec(f"{key}.rater", s.rater)
    for scorer, model in (("ifd", s.ifd.model), ("rater", s.rater.model)):
        if model == "finetuned" and (scorer == "ifd" or s.rater.backend == "local"):
            yield f"{key}.{scorer}.model: the model trained on the selection cannot score it; use base or a folder"


def _near_dup(p: Params) -> Iterable[str]:
    n = p.curate.near_dup
    if not 0 < n.threshold <= 1:
        yield "curate.near_dup.threshold: must be a Jaccard similarity in (0, 1]"
    if n.shingle < 1 or n.num_perm < 2:
        yield "curate.near_dup: shingle must be >= 1 word and num_perm >= 2 (default 5 and 128)"


def _decontam(p: Params) -> Iterable[str]:
    if p.curate.decontam.ngram < 1 or p.curate.decontam.min_words < 1:
        yield "curate.decontam: ngram and min_words must be >= 1 (lm-eval-harness: 13)"
    if not 0.0 < p.curate.decontam.short_similarity <= 1.0:
        yield "curate.decontam.short_similarity: must be in (0, 1] (a Jaccard similarity; 1: the same words only)"


# ------------------------------------------------------------------------------------------------------------ model


def _model(p: Params) -> Iterable[str]:
    m = p.model
    needs = {"gguf_package": ("package", "gguf_file"), "local": ("path",), "tiny_random": ("tiny",)}
    for source, keys in needs.items():
        for key in keys:
            value = getattr(m, key)
            if m.source == source and value in (None, ""):
                yield f"model.{key}: model.source {source} needs it; add it"
            if m.source != source and value is not None:
                yield f"model.{key}: only model.source {source} reads it; remove it (source is {m.source})"


def _train(p: Params) -> Iterable[str]:
    t = p.train
    if min(t.epochs, t.batch_size, t.grad_accum, t.max_tokens, t.checkpoint_layers_every) < 1:
        yield "train.epochs, batch_size, grad_accum, max_tokens, checkpoint_layers_every: each must be >= 1"
    if t.max_steps < 0 or t.checkpoint_every < 0 or t.loss_chunk < 0 or t.keep_last < 1:
        yield "train.max_steps, checkpoint_every, loss_chunk: >= 0 (0: off); train.keep_last: >= 1"
    if t.lr <= 0 or t.lr_end < 0:
        yield "train.lr: must be > 0 and train.lr_end >= 0 (LIMA: 1e-5 -> 1e-6)"
    if t.lr_end > t.lr:
        yield "train.lr_end: larger than train.lr; the schedule decays from lr to lr_end"
    if not 0 <= t.residual_dropout < 1:
        yield "train.residual_dropout: must be in [0, 1) (LIMA: 0.3, 0.2 for small models)"
    if t.select == "dev_loss" and t.dev_holdout < 1:
        yield "train.dev_holdout: select dev_loss needs held-out examples to score; set it >= 1 (LIMA: 50)"
    for e in t.select_epochs:
        if not 1 <= e <= t.epochs:
            yield f"train.select_epochs: epoch {e} is not in 1..train.epochs ({t.epochs})"


def _train_select(p: Params) -> Iterable[str]:
    t = p.train
    for key in ("select_judge", "select_decoding"):
        if t.select == "judge" and getattr(t, key) is None:
            yield f"train.{key}: select judge needs it (see the commented entry in params.yaml); add it"
        if t.select != "judge" and getattr(t, key) is not None:
            yield f"train.{key}: only train.select judge reads it; remove it (select is {t.select})"
    spec = t.select_judge
    if spec is not None:
        if spec.backend == "local" and spec.model == "finetuned":
            yield (
                "train.select_judge.model: the model in training cannot judge its own epochs; use base or a served one"
            )
        yield from _judge_spec("train.select_judge", spec)


# ------------------------------------------------------------------------------------------------------------- eval


def _generate(p: Params) -> Iterable[str]:
    g = p.generate
    if not 0 < g.top_p <= 1:
        yield "generate.top_p: must be in (0, 1] (LIMA: 0.9)"
    if g.backend == "openai" and g.openai is None:
        yield "generate.openai: backend openai needs it (base_url, model, api_key_env, ...); add it"
    if g.backend != "openai" and g.openai is not None:
        yield f"generate.openai: only backend openai reads it; remove it (backend is {g.backend})"
    if g.openai is not None and g.openai.model and len(g.models) > 1:
        yield (
            "generate.openai.model: names one served model but generate.models lists several; set it to '' "
            "(each checkpoint is then requested by its path) or list one model"
        )
    yield from _unique(list(g.models), "generate.models", "models")
    for name in g.baselines:
        key = f"generate.baselines.{name}"
        if name in g.models:
            yield f"{key}: {name!r} is already a model name; give it another"
        if not SYSTEM_NAME.fullmatch(name):
            yield f"{key}: {name!r} names a stage (import@{name}) and a file; use letters, digits, '_', '-' and '.'"


def _judge(p: Params) -> Iterable[str]:
    j = p.judge
    if j.candidate in j.baselines:
        yield "judge.baselines: contains the candidate itself; list only the models to compare against"
    answered = [*p.generate.models, *p.generate.baselines]  # whom generate@ and import@ give answers for
    compared = {"judge.candidate": j.candidate} | {f"judge.baselines[{i}]": b for i, b in enumerate(j.baselines)}
    for key, name in compared.items():
        if name not in answered:
            yield f"{key}: {name!r} has no answers; add it to generate.models or generate.baselines ({answered})"
    names = [s.name for s in j.judges]
    if not names:
        yield "judge.judges: empty; list at least one judge (backend, model, template)"
    yield from _unique(names, "judge.judges", "judges")
    if j.primary not in names:
        yield f"judge.primary: {j.primary!r} is not a judge; use one of {names}"
    panel = j.panel.judges
    if panel and (len(panel) < 2 or len(set(panel)) != len(panel)):
        yield f"judge.panel.judges: {list(panel)}: name at least two different judges, or [] for no panel"
    for name in sorted(set(panel) - set(names)):
        yield f"judge.panel.judges: {name!r} is not a judge; use names from judge.judges ({names})"
    if j.bootstrap < 1000:
        yield "judge.bootstrap: use at least 1000 resamples for a 95% interval"
    if j.injection.pairs < 0:
        yield "judge.injection.pairs: must be >= 0 (0 turns the injection set off)"
    if j.strong_weight < 1:
        yield "judge.strong_weight: must be >= 1 (a strong verdict counts at least as one; Arena-Hard: 3)"
    yield from _each(j.judges, lambda i, s: _judge_spec(f"judge.judges[{i}]", s))
    for i, s in enumerate(j.judges):
        if s.backend == "local" and s.model == "finetuned":
            yield (
                f"judge.judges[{i}].model: the model in training cannot judge; use base, a model folder or a served "
                "one (a judge must stay the same from run to run, so that their win rates compare)"
            )


def _judge_spec(key: str, s: JudgeSpec) -> Iterable[str]:
    yield from _backend_spec(key, s)
    if s.calibrate and s.mode != "logprobs":
        yield f"{key}.calibrate: only applies to mode logprobs"


def _backend_spec(key: str, s: JudgeSpec | Rater) -> Iterable[str]:
    """What a judge and a rater share: the backend, its endpoint, the decoding, the price."""
    if s.backend == "openai" and not s.model:
        yield f"{key}.model: backend openai needs the served model name"
    if s.backend == "openai" and s.openai is None:
        yield f"{key}.openai: backend openai needs it (base_url, api_key_env, concurrency, ...); add it"
    if s.backend != "openai" and s.openai is not None:
        yield f"{key}.openai: only backend openai reads it; remove it (backend is {s.backend})"
    if s.temperature < 0 or s.max_new_tokens < 1 or s.batch_size < 1 or s.context_tokens < 0:
        yield f"{key}: temperature, context_tokens >= 0 and max_new_tokens, batch_size >= 1"
    if s.price.input_per_mtok < 0 or s.price.output_per_mtok < 0:
        yield f"{key}.price: prices are >= 0 dollars per million tokens"


def _eval(p: Params) -> Iterable[str]:
    s = p.eval.prompts
    if s == "all":
        return
    given = [k for k in ("ids", "first", "sample") if getattr(s, k) is not None]
    if len(given) != 1:
        yield f"eval.prompts: set exactly one of ids, first, sample (got {given or 'none'}); or eval.prompts: all"
    if s.ids is not None and (not s.ids or len(set(s.ids)) != len(s.ids)):
        yield "eval.prompts.ids: list each prompt id once, at least one"
    for key in ("first", "sample"):
        if getattr(s, key) is not None and getattr(s, key) < 1:
            yield f"eval.prompts.{key}: must be >= 1"
    if (s.sample is None) != (s.seed is None):
        yield "eval.prompts.seed: a sample needs its seed, and only a sample reads one"


CHECKS: list[Check] = [
    _data,
    _sources,
    _validate,
    _curate,
    _scores,
    _near_dup,
    _decontam,
    _model,
    _train,
    _train_select,
    _generate,
    _judge,
    _eval,
]


# ------------------------------------------------------------------------------------------------------------ files


def _ingest_paths(p: Params) -> Iterable[str]:
    from lessismore.errors import UserError
    from lessismore.storage import expand, is_remote

    def one(i: int, s: Source) -> Iterable[str]:
        if not s.path.startswith("hf://") and not is_remote(s.path.removeprefix("file://")):
            try:
                expand(s.path, f"ingest.sources[{i}].path", s.name)
            except UserError as err:
                yield str(err)

    yield from _each(p.ingest.sources, one)


def _import_paths(p: Params) -> Iterable[str]:
    from pathlib import Path

    for name, b in p.generate.baselines.items():
        if not Path(b.path).is_file():
            yield f"generate.baselines.{name}.path: {b.path} is not a file; fix the path (relative to the repository)"


def _model_paths(p: Params) -> Iterable[str]:
    from pathlib import Path

    m = p.model
    if m.source == "local" and m.path and not Path(m.path).is_dir() and not _in_hf_cache(m.path):
        yield (
            f"model.path: {m.path} is neither a folder nor a model in the offline Hugging Face cache; fix the path "
            "or download the model once where the network is allowed (`hf download <id>`)"
        )


def _in_hf_cache(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except ValueError:  # not a valid repo id either
        return False


PATHS: dict[str, Check] = {"ingest": _ingest_paths, "import": _import_paths, "model": _model_paths}
