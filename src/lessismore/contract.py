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
QUARANTINE = Path("data/quarantine")  # <stage>.jsonl: every dropped record with its reason, file and row
DATA_DOCS = Path("reports/data_docs")
BASE_MODEL = Path("models/base")
FINAL_MODEL = Path("models/final")
MODEL_CARD = FINAL_MODEL / "README.md"
CHECKPOINTS = Path("models/checkpoints")
TRAIN_LOG = Path("logs/train")  # DVCLive's folder (train/steplog.py): the run's per-step log and its latest values
TRAIN_STEPS = TRAIN_LOG / "plots" / "metrics"  # one .tsv a column, for `dvc plots`
TRAIN_LAST = TRAIN_LOG / "metrics.json"  # the last step's values, for `dvc exp show`
TRAIN_PERF = Path("logs/train_perf")  # the machine's per-step figures (tokens/s, seconds, memory): volatile
TRAIN_PERF_STEPS = TRAIN_PERF / "plots" / "metrics"
TRAIN_PERF_LAST = TRAIN_PERF / "metrics.json"
BASELINES = Path("data/baselines")  # published answers that generate.baselines imports (git- or DVC-tracked)
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
PUBLISHED_CARD = Path("reports/model_card.md")  # MODEL_CARD with the test results: upload it as models/final's README
PLOTS_PAGE = Path("reports/plots")  # `lessismore plots`: dvc plots show as one offline page
LOCK = Path("dvc.lock")
MODEL_DIRS = {"base": BASE_MODEL, "finetuned": FINAL_MODEL}  # the names params use for the two models


def quarantine(stage: str) -> Path:
    return QUARANTINE / f"{stage}.jsonl"


def metrics(stage: str) -> Path:
    """What the stage computed: a re-run of the same commit, inputs and seed writes the same bytes."""
    return METRICS / f"{stage}.json"


def timing(stage: str) -> Path:
    """What the machine measured while the stage ran (seconds, tokens/s): different on every run."""
    return METRICS / "timing" / f"{stage}.json"


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
    reads: tuple[Path, ...]  # data deps
    writes: tuple[Path, ...]  # outs, metrics and plots


TIMED = ("ingest", "validate", "curate", "train", "generate", "judge")  # the stages that write a timing file
STAGES: dict[str, Stage] = {
    "ingest": Stage(
        ("ingest", "data.shard_rows"),
        (SOURCES,),
        (INGESTED, quarantine("ingest"), metrics("ingest"), timing("ingest")),
    ),
    "validate": Stage(
        ("validate", "ingest.sources", "data.shard_rows"),
        (INGESTED, quarantine("ingest")),
        (VALIDATED, quarantine("validate"), DATA_DOCS, metrics("validate"), timing("validate")),
    ),
    "curate": Stage(
        ("curate", "base.seed", "ingest.sources"),
        (VALIDATED,),
        (CURATED, quarantine("curate"), metrics("curate"), timing("curate")),
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
    "generate": Stage(
        ("generate", "base.seed", "eval.prompts"),
        (VALIDATED, BASE_MODEL, FINAL_MODEL, BASELINES),
        (RESPONSES, quarantine("generate"), metrics("generate"), timing("generate")),
    ),
    "judge": Stage(
        ("judge", "base.seed", "eval.prompts"),
        (RESPONSES, HUMAN_JUDGMENTS, VALIDATED, BASE_MODEL, FINAL_MODEL),
        (JUDGMENTS, RATINGS, INJECTION, JUDGE_CACHE, metrics("judge"), timing("judge")),
    ),
    "report": Stage(
        ("report", "base.experiment"),
        (
            *(metrics(s) for s in TIMED),
            *(timing(s) for s in TIMED),
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
