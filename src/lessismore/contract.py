"""Each DVC stage's contract, declared once: the files it reads and writes and the params keys it reads.

Every path of the pipeline is named here and nowhere else in the code: stage scripts, the CLI, the flows, lineage and
explain import these names. dvc.yaml lists the same files and keys; tests/unit/test_architecture.py keeps the two
equal, and also checks that each stage's code deps cover every project module the stage imports. `load_params(stage=)`
holds a stage to its params: reading a key that is not in its `params` is an error, so dvc.yaml can never miss one.
Paths are relative to the repository root (DVC runs every stage there).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# ---------------------------------------------------------------------------------------------------- the artifacts
SOURCES = Path("data/sources")  # the embedded default's own sources (git-tracked)
INGESTED = Path("data/ingested")
VALIDATED = Path("data/validated")
EXAMPLES = "examples"  # in INGESTED and VALIDATED: a folder of SHARDs, one records.Example a row
PROMPTS = "prompts.parquet"  # in INGESTED and VALIDATED: the dev and test records.Prompt rows (one file: small)
SHARD = "part-{:05d}.parquet"  # one shard of a sharded table: data.shard_rows rows (the last one fewer)
CURATED = Path("data/curated")
TRAIN_SET = CURATED / "train.jsonl"  # one records.Example a line: the training set
DATASET_CARD = CURATED / "README.md"
# every model-based score of a candidate (curate.scores), by content hash: kept between runs (persist), pushed with dvc
SCORE_CACHE = Path("data/scores.jsonl")
QUARANTINE = Path("data/quarantine")  # <stage>.jsonl: every dropped record with its reason, file and row
DATA_DOCS = Path("reports/data_docs")
BASE_MODEL = Path("models/base")
FINAL_MODEL = Path("models/finetuned")
MODEL_CARD = FINAL_MODEL / "README.md"
CHECKPOINTS = Path("models/checkpoints")
TRAIN_LOG = Path("logs/train")  # DVCLive's folder (train/steplog.py): the run's per-step log and its latest values
TRAIN_STEPS = TRAIN_LOG / "plots" / "metrics"  # one .tsv a column, for `dvc plots`
TRAIN_LAST = TRAIN_LOG / "metrics.json"  # the last step's values, for `dvc exp show`
TRAIN_PERF = Path("logs/train_perf")  # the machine's per-step figures (tokens/s, seconds, memory): volatile
TRAIN_PERF_STEPS = TRAIN_PERF / "plots" / "metrics"
TRAIN_PERF_LAST = TRAIN_PERF / "metrics.json"
RESPONSES = Path("outputs/responses")  # <model>.jsonl: one records.Response a line
JUDGMENTS = Path("outputs/judgments.jsonl")
RATINGS = Path("outputs/ratings.jsonl")
INJECTION = Path("outputs/injection.jsonl")
JUDGE_CACHE = Path("outputs/judge_cache.jsonl")
HUMAN_JUDGMENTS = Path("outputs/human_judgments.jsonl")  # `lessismore annotate --export`; git-tracked
ANNOTATE_DB = Path("outputs/annotate.sqlite")
METRICS = Path("metrics")  # <stage>.json
ABLATION = METRICS / "ablation.json"  # the ablation flow's curve (git-tracked)
REPORT = Path("reports/index.html")
PUBLISHED_CARD = Path("reports/model_card.md")  # MODEL_CARD + the test results: models/finetuned's README to upload
PLOTS_PAGE = Path("reports/plots")  # `lessismore plots`: dvc plots show as one offline page
LOCK = Path("dvc.lock")
# <stage>/: a data stage's work in progress (resume.py): its outputs staged, and the checkpoint a killed run resumes
# from. Outside every DVC out (DVC deletes a stage's outs before it runs it) and git-ignored; removed when it finishes.
PARTIAL = Path(".lessismore/partial")
MODEL_DIRS = {"base": BASE_MODEL, "finetuned": FINAL_MODEL}  # the names params use for the two models: models/<name>


# A stage that runs once per entry of a params list or mapping (dvc.yaml `foreach`: generate@finetuned,
# import@gpt4) names its instance's files with `item`: pass the entry's name, or ITEM / KEY for dvc.yaml's template.
ITEM, KEY = "${item}", "${key}"  # dvc.yaml's names for a foreach entry: a list's element, a mapping's key


def group(stage: str) -> str:
    """The dvc.yaml stage a stage instance comes from: generate@finetuned -> generate (a foreach stage's entry).

    >>> group("generate@finetuned"), group("judge")
    ('generate', 'judge')
    """
    return stage.split("@", 1)[0]


def response_file(system: str) -> Path:
    """The answers of one system (a model of generate.models or an imported one of generate.baselines)."""
    return RESPONSES / f"{system}.jsonl"


def quarantine(stage: str, item: str = "") -> Path:
    return QUARANTINE / stage / f"{item}.jsonl" if item else QUARANTINE / f"{stage}.jsonl"


def metrics(stage: str, item: str = "") -> Path:
    """What the stage computed: a re-run of the same commit, inputs and seed writes the same bytes."""
    return METRICS / stage / f"{item}.json" if item else METRICS / f"{stage}.json"


def timing(stage: str, item: str = "") -> Path:
    """What the machine measured while the stage ran (seconds, tokens/s): different on every run."""
    return METRICS / "timing" / stage / f"{item}.json" if item else METRICS / "timing" / f"{stage}.json"


ANSWERS = METRICS / "generate"  # <system>.json: one file per system that answered, generated or imported
ANSWER_TIMES = METRICS / "timing" / "generate"


# ----------------------------------------------------------------------------------------- volatile by nature
# The outputs that differ between two runs of the same commit, inputs and seed, and why; every other output of every
# stage is byte-identical between such runs (tests/e2e/test_reproducible.py). Declared here and nowhere else.
VOLATILE: dict[Path, str] = {
    METRICS / "timing": "wall-clock seconds and throughput of each stage",
    TRAIN_PERF_STEPS: "per-step throughput, seconds and peak memory of training",
    TRAIN_PERF_LAST: "the same, last step",
    CHECKPOINTS: "a working area: trainer_state.pt holds the elapsed seconds (not a product; cache: false)",
    DATA_DOCS: "Great Expectations Data Docs: run ids and timestamps in the HTML",
    REPORT: "the report page: it charts the stage timings",
}


# ------------------------------------------------------------------------------------------------------- the stages
@dataclass(frozen=True)
class Stage:
    """One DVC stage: what dvc.yaml lists for it besides its code (`deps` that are data, `outs`, `metrics`)."""

    params: tuple[str, ...]  # its own section whole, plus each other key it reads by its dotted name
    reads: tuple[Path | str, ...]  # data deps
    writes: tuple[Path, ...]  # outs, metrics and plots
    foreach: str = ""  # a params list or mapping: one instance of the stage per entry (its name after "@")


TIMED = ("ingest", "validate", "curate", "train", "generate", "judge")  # the stages that write a timing file
STAGES: dict[str, Stage] = {
    "ingest": Stage(
        ("ingest", "data.shard_rows", "data.engine", "data.batch_rows", "data.workers", "data.ray"),
        (SOURCES,),
        (INGESTED, quarantine("ingest"), metrics("ingest"), timing("ingest")),
    ),
    "validate": Stage(
        ("validate", "ingest.sources", "data.shard_rows", "data.engine", "data.workers", "data.ray"),
        (INGESTED, quarantine("ingest")),
        (VALIDATED, quarantine("validate"), DATA_DOCS, metrics("validate"), timing("validate")),
    ),
    # models/base: the scorers' model when curate.variant selects by scores (a dep in every variant: DVC's deps
    # cannot follow a param; under lima a new base model re-runs curate to the same bytes)
    "curate": Stage(
        ("curate", "base.seed", "ingest.sources", "data.shard_rows", "data.engine", "data.batch_rows")
        + ("data.workers", "data.ray"),
        (VALIDATED, BASE_MODEL),
        (CURATED, quarantine("curate"), SCORE_CACHE, metrics("curate"), timing("curate")),
    ),
    "model": Stage(("model", "base.seed"), (), (BASE_MODEL,)),
    "train": Stage(
        ("train", "base.seed", "base.experiment", "model.name", "model.hub_id", "model.license"),
        (CURATED, VALIDATED, BASE_MODEL),
        (
            FINAL_MODEL,
            CHECKPOINTS,
            metrics("train"),
            timing("train"),
            TRAIN_LAST,
            TRAIN_STEPS,
            TRAIN_PERF_LAST,
            TRAIN_PERF_STEPS,
        ),
    ),
    # One instance per model: generate@finetuned reads models/finetuned (an adapter is merged into models/base, so
    # both are deps), generate@base models/base. With `generate.models: []` there is none, and nothing trains.
    "generate": Stage(
        ("generate", "base.seed", "eval.prompts"),
        (VALIDATED, BASE_MODEL, Path("models") / ITEM),
        (response_file(ITEM), metrics("generate", ITEM), timing("generate", ITEM)),
        foreach="generate.models",
    ),
    # One instance per published answer file (generate.baselines is a mapping name -> {format, path}): each depends
    # on exactly its own file and params entry.
    "import": Stage(
        ("generate.baselines." + KEY, "eval.prompts"),
        (VALIDATED, "${item.path}"),
        (response_file(KEY), quarantine("import", KEY), metrics("generate", KEY), timing("generate", KEY)),
        foreach="generate.baselines",
    ),
    # No dep on models/finetuned: a local judge is the base model or a folder of its own, never the model in
    # training (configcheck), so judging imported answers trains nothing.
    "judge": Stage(
        ("judge", "base.seed", "eval.prompts"),
        (RESPONSES, HUMAN_JUDGMENTS, VALIDATED, BASE_MODEL),
        (JUDGMENTS, RATINGS, INJECTION, JUDGE_CACHE, metrics("judge"), timing("judge")),
    ),
    "report": Stage(
        ("report", "base.experiment"),
        (
            *(ANSWERS if s == "generate" else metrics(s) for s in TIMED),  # generate's: a file per system
            *(ANSWER_TIMES if s == "generate" else timing(s) for s in TIMED),
            ABLATION,
            TRAIN_STEPS,
            TRAIN_PERF_STEPS,
            JUDGMENTS,
            RESPONSES,
            VALIDATED,
            FINAL_MODEL,
        ),
        (REPORT, PUBLISHED_CARD),
    ),
}
