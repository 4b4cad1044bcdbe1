"""A tiny project with every kind of model the evaluation meets, written by the test (untrained).

models/baseline (MLP G + D), models/conditional (conditional G + D + embedder), models/vae (VAE
decoder, no D), models/evaluator (a tiny EvaluatorCNN), plus the caption table and attribute cut
points from ``describe_items`` (the train_gan step the evaluation reads), all on the tiny drawn
Fashion-MNIST of ``tests/conftest.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from tests.conftest import make_kedro_project, run_pipeline

from fashiongan.datasets import TensorDictDataset
from fashiongan.datasets.safetensors import save_module
from fashiongan.models.autoencoders import VAEConfig, VAEDecoder
from fashiongan.models.conditional_gan import (
    ConditionalDiscriminator,
    ConditionalGANConfig,
    ConditionalGenerator,
    EmbeddingConfig,
    ImageEmbedder,
)
from fashiongan.models.evaluator import EvaluatorCNN, EvaluatorConfig
from fashiongan.models.mlp_gan import MLPDiscriminator, MLPGANConfig, MLPGenerator
from fashiongan.pipelines.train_gan.nodes import describe_items

#: conf/local overrides: a few queries and images so the whole pipeline runs in seconds.
TINY_EVALUATION = {
    "evaluation": {
        "device": "cpu",
        "batch_size": 32,
        "kid_subsets": 5,
        "inception": {"enabled": False},
        "retrieval": {"n_queries": 12, "n_images": 2, "n_examples": 2},
        "figures": {
            "per_class": 3,
            "n_noise": 3,
            "interpolation_steps": 4,
            "interpolation_rows": 2,
            "noise_captions": ["a dark ankle boot", "light trousers"],
        },
    }
}


def tiny_modules() -> dict[str, dict[str, torch.nn.Module]]:
    """Untrained tiny models, keyed by model name then file stem."""
    torch.manual_seed(0)
    mlp = MLPGANConfig(noise_dim=8, generator_hidden=(16,), discriminator_hidden=(16,))
    cond = ConditionalGANConfig(
        g_channels=8, d_channels=8, text_channels=4, noise_channels=4, embed_dim=16
    )
    return {
        "baseline": {"generator": MLPGenerator(mlp), "discriminator": MLPDiscriminator(mlp)},
        "conditional": {
            "generator": ConditionalGenerator(cond),
            "discriminator": ConditionalDiscriminator(cond),
            "embedder": ImageEmbedder(EmbeddingConfig(width=4, dim=8)),
        },
        "vae": {"generator": VAEDecoder(VAEConfig(latent_dim=4, channels_hidden=(4, 8)))},
        "evaluator": {
            "evaluator": EvaluatorCNN(
                EvaluatorConfig(channels=(4, 8), convs_per_block=(1, 1), feature_dim=16)
            )
        },
    }


def write_models(models_dir: Path) -> None:
    for name, files in tiny_modules().items():
        for stem, module in files.items():
            save_module(module.eval(), models_dir / name / f"{stem}.safetensors")


def write_text_features(project: Path) -> None:
    """The caption table and attribute cut points, as train_gan's describe_items writes them."""
    model_input = TensorDictDataset(
        filepath=str(project / "data/05_model_input/fashion_mnist.safetensors")
    ).load()
    attributes, captions = describe_items(model_input, {"per_item": 1}, seed=42)
    TensorDictDataset(
        filepath=str(project / "data/04_feature/fashion_mnist_attributes.safetensors")
    ).save(attributes)
    captions.to_parquet(project / "data/04_feature/fashion_mnist_captions.parquet")


@pytest.fixture(scope="package")
def evaluation_project(tmp_path_factory):
    """Tiny project after data_processing, with models and text features in place."""
    monkeypatch = pytest.MonkeyPatch()
    project = make_kedro_project(tmp_path_factory.mktemp("evaluation"), monkeypatch)
    (project / "conf/local/parameters_evaluation.yml").write_text(yaml.safe_dump(TINY_EVALUATION))
    run_pipeline(project, ["data_processing"])
    write_models(project / "models")
    write_text_features(project)
    yield project
    monkeypatch.undo()
