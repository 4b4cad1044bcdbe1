"""The 5-minute path: ``conf/smoke`` and ``make smoke`` (run for real in the README's timing,
not here: it trains on the real data)."""

from __future__ import annotations

import re
import shlex

import pytest
from kedro.config import OmegaConfigLoader

from fashiongan.config import parse_parameters
from fashiongan.settings import CONFIG_LOADER_ARGS
from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def smoke() -> OmegaConfigLoader:
    return OmegaConfigLoader(str(REPO_ROOT / "conf"), env="smoke", **CONFIG_LOADER_ARGS)


def _recipe(target: str) -> list[str]:
    """The command lines of a Makefile target."""
    text = (REPO_ROOT / "Makefile").read_text()
    body = re.search(rf"^{target}:[^\n]*\n((?:\t[^\n]*\n)+)", text, flags=re.MULTILINE)
    assert body, f"no `{target}` target"
    return [line.strip() for line in body.group(1).splitlines()]


def test_every_smoke_parameter_is_a_valid_override(smoke):
    typed = parse_parameters(dict(smoke["parameters"]))
    assert typed["run_name"].root == "smoke"
    assert typed["baseline"].training.iterations <= 500
    assert typed["conditional"].training.epochs == 1
    assert typed["evaluator"].training.epochs == 1
    assert not typed["evaluation"].inception.enabled  # ~0.5 s an image on a CPU


def test_smoke_writes_only_the_smoke_variant(smoke):
    """Its models, histories and reports never land on a full run's (or the committed) files."""
    for name, entry in smoke["catalog"].items():
        saved = entry["dataset"] if isinstance(entry.get("dataset"), dict) else entry
        path = str(saved.get("filepath", saved.get("path", "")))
        if path.startswith(("models/", "data/08_reporting/", "reports")) and "{" not in path:
            shared = path.endswith(("fashion_mnist_summary.json", "ingestion.json"))
            assert shared or "smoke" in path.split("/"), (name, path)


def test_smoke_evaluates_what_smoke_trains(smoke):
    """evaluation.models names <family>/smoke for each GAN family the make target trains."""
    evaluated = set(smoke["parameters"]["evaluation"]["models"])
    trained = {
        f"{dict(w.split('=', 1) for w in words if '=' in w)['--namespaces']}/smoke"
        for words in map(shlex.split, _recipe("smoke"))
        if "--namespaces=baseline" in words or "--namespaces=conditional" in words
    }
    assert evaluated == trained == {"baseline/smoke", "conditional/smoke"}


def test_make_smoke_runs_every_step_in_the_smoke_environment():
    lines = _recipe("smoke")
    assert "captions" in lines[0]  # the data through DVC, as `make data`: shared, not retrained
    pipelines = [re.search(r"--pipelines=(\S+)", line).group(1) for line in lines[1:]]
    assert pipelines == ["train_gan", "train_gan", "train_evaluator", "evaluation", "search_index"]
    assert all("$(SMOKE)" in line for line in lines[1:])
    assert "SMOKE := $(BIN)/kedro run --env smoke" in (REPO_ROOT / "Makefile").read_text()
