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

.PHONY: install data train test lint viz viz-build mlflow-ui benchmark repro clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

data: install
	$(BIN)/kedro run --pipelines=data_processing

# One MLflow run per model: the baseline, then the conditional GAN.
train: install
	$(BIN)/kedro run --pipelines=train_gan --namespaces=baseline
	$(BIN)/kedro run --pipelines=train_gan --namespaces=conditional

repro: install
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/dvc repro

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

viz: install
	$(BIN)/kedro viz run --host $(HOST) --port $(VIZ_PORT) --no-browser

viz-build: install
	$(BIN)/kedro viz build

mlflow-ui: install
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db --host $(HOST) --port $(MLFLOW_PORT)

benchmark: install
	$(BIN)/python benchmarks/ingestion.py

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache
