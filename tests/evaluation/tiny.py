"""Tiny inputs for the evaluation library and pipeline tests: drawn items, untrained models.

The items are the boxes of ``tests/conftest.py`` (200 training and 50 test items), captioned by
the caption library; the models are untrained and tiny, one of every kind the evaluation meets.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from fashiongan.config import CaptionAttributes, EvaluationParams, overridden
from fashiongan.models.autoencoders import VAEDecoder
from fashiongan.models.conditional_gan import (
    ConditionalDiscriminator,
    ConditionalGenerator,
    ImageEmbedder,
)
from fashiongan.models.evaluator import EvaluatorCNN
from fashiongan.models.mlp_gan import MLPDiscriminator, MLPGenerator
from fashiongan.pixels import from_uint8
from fashiongan.text.features import caption_dataset
from tests.conftest import REPO_ROOT, draw_items
from tests.model_configs import (
    SMALL_CONDITIONAL,
    conditional_config,
    embedding_config,
    evaluator_config,
    mlp_config,
    vae_config,
)

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

#: The caption settings of conf/base (one caption an item).
CAPTIONS = CaptionAttributes(per_item=1, drop_prob=0.25, phrasings_per_key=16)


def _flatten(changes: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in changes.items():
        if isinstance(value, dict):
            flat |= _flatten(value, f"{prefix}{key}__")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def evaluation_params(**changes) -> EvaluationParams:
    """conf/base's ``evaluation`` block with the tiny overrides and ``changes`` (``a__b`` keys)."""
    yml = yaml.safe_load((REPO_ROOT / "conf/base/parameters_evaluation.yml").read_text())
    base = EvaluationParams.model_validate(yml["evaluation"])
    return overridden(base, **(_flatten(TINY_EVALUATION["evaluation"]) | changes))


def tiny_model_input(n_train: int = 200, n_test: int = 50) -> dict[str, torch.Tensor]:
    """Train and test items in [-1, 1] (N, 1, 28, 28) with their labels, as data_processing
    would give them for the tiny idx files."""
    rng = np.random.default_rng(0)
    train_labels = np.arange(n_train) % 10
    rng.shuffle(train_labels)
    test_labels = np.arange(n_test) % 10

    def images(labels: np.ndarray, seed: int) -> torch.Tensor:
        return from_uint8(torch.from_numpy(draw_items(labels, seed))).unsqueeze(1).contiguous()

    return {
        "train_images": images(train_labels, 0),
        "train_labels": torch.from_numpy(train_labels).long(),
        "test_images": images(test_labels, 1),
        "test_labels": torch.from_numpy(test_labels).long(),
    }


def tiny_captions(
    model_input: dict[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], pd.DataFrame]:
    """Attribute cut points and the caption table, as the captions pipeline writes them."""
    described = caption_dataset(model_input, CAPTIONS, seed=42)
    return described["attributes"], described["captions"]


def tiny_modules() -> dict[str, dict[str, torch.nn.Module]]:
    """Untrained tiny models, keyed by model name then file stem."""
    torch.manual_seed(0)
    mlp = mlp_config(noise_dim=8, generator_hidden=(16,), discriminator_hidden=(16,))
    cond = conditional_config(**SMALL_CONDITIONAL)
    return {
        "baseline": {"generator": MLPGenerator(mlp), "discriminator": MLPDiscriminator(mlp)},
        "conditional": {
            "generator": ConditionalGenerator(cond),
            "discriminator": ConditionalDiscriminator(cond),
            "embedder": ImageEmbedder(embedding_config(width=4, dim=8)),
        },
        "vae": {"generator": VAEDecoder(vae_config(latent_dim=4, channels_hidden=(4, 8)))},
        "evaluator": {
            "evaluator": EvaluatorCNN(
                evaluator_config(channels=(4, 8), convs_per_block=(1, 1), feature_dim=16)
            )
        },
    }


def write_models(models_dir: Path) -> None:
    from fashiongan.datasets.safetensors import save_module

    for name, files in tiny_modules().items():
        for stem, module in files.items():
            save_module(module.eval(), models_dir / name / f"{stem}.safetensors")
