"""A tiny project with every kind of model the evaluation meets, written by the test (untrained).

models/baseline/default (MLP G + D), models/conditional/default (conditional G + D + embedder),
models/vae/default (VAE decoder, no D), models/evaluator/default (a tiny EvaluatorCNN), plus the caption table and attribute cut
points the captions pipeline writes, all on the tiny drawn Fashion-MNIST of
``tests/conftest.py``. The models and inputs are ``tests/evaluation/tiny.py``'s.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from tests.conftest import make_kedro_project, run_pipeline
from tests.evaluation.tiny import TINY_EVALUATION, tiny_captions, write_models

from fashiongan.datasets import TensorDictDataset

__all__ = ["TINY_EVALUATION", "evaluation_project"]


def write_text_features(project: Path) -> None:
    """The caption table and attribute cut points, as the captions pipeline writes them."""
    model_input = TensorDictDataset(
        filepath=str(project / "data/05_model_input/fashion_mnist.safetensors")
    ).load()
    attributes, captions = tiny_captions(model_input)
    TensorDictDataset(
        filepath=str(project / "data/04_feature/fashion_mnist_attributes.safetensors")
    ).save(attributes)
    captions.to_parquet(project / "data/04_feature/fashion_mnist_captions.parquet")


def write_variants(models: Path, variant: str = "default") -> None:
    """The tiny models as training writes them: ``models/<family>/<variant>/``."""
    flat = models.parent / "models_flat"
    write_models(flat)
    for family in sorted(flat.iterdir()):
        (models / family.name).mkdir(parents=True, exist_ok=True)
        family.rename(models / family.name / variant)
    flat.rmdir()


@pytest.fixture(scope="package")
def evaluation_project(tmp_path_factory):
    """Tiny project after data_processing, with models and text features in place."""
    monkeypatch = pytest.MonkeyPatch()
    project = make_kedro_project(tmp_path_factory.mktemp("evaluation"), monkeypatch)
    (project / "conf/local/parameters_evaluation.yml").write_text(yaml.safe_dump(TINY_EVALUATION))
    run_pipeline(project, ["data_processing"])
    write_variants(project / "models")
    write_text_features(project)
    yield project
    monkeypatch.undo()
