"""Model configs for tests: conf/base's ``model`` blocks, the data's facts, and a test's changes.

The networks' configs have no defaults (their keys live in YAML), so a test starts from the
configured block and states only what it changes.
"""

from __future__ import annotations

from typing import Any

from fashiongan.config import TextEncoderParams, load_parameters, overridden
from fashiongan.generation import base_encoder_params
from fashiongan.models.autoencoders import AutoencoderConfig, VAEConfig
from fashiongan.models.classifier import ClassifierConfig
from fashiongan.models.conditional_gan import ConditionalGANConfig, EmbeddingConfig
from fashiongan.models.evaluator import EvaluatorConfig
from fashiongan.models.mlp_gan import MLPGANConfig
from tests.conftest import REPO_ROOT

BLOCKS = load_parameters(REPO_ROOT / "conf")
#: What Fashion-MNIST and the bundled encoder fix: 28×28 grey images, 384 text features.
FASHION_MNIST = {"image_size": 28, "channels": 1}
#: The encoder the tests' features come from, as G's config names it: the bundled MiniLM, as
#: conf/base pools it (``model_extra`` of the trainer).
BUNDLED_FEATURES = {
    "text_encoder": "bundled",
    "text_pooling": BLOCKS["conditional"].text_encoder.pooling,
}
BUNDLED_TEXT = {"text_dim": 384, "aux_classes": (), **BUNDLED_FEATURES}

#: Conditional GANs small enough for a test, without the text code and the minibatch spread.
TINY_CONDITIONAL = {
    "text_code_dim": 0, "minibatch_std": False,
    "g_channels": 4, "text_channels": 2, "noise_channels": 2, "noise_dim": 4,
}  # fmt: skip
SMALL_CONDITIONAL = {
    "text_code_dim": 0, "minibatch_std": False, "g_channels": 8, "d_channels": 8,
    "text_channels": 4, "noise_channels": 4, "embed_dim": 16,
}  # fmt: skip


def _values(block: Any, **changes: Any) -> dict[str, Any]:
    return block.model_dump() | changes


def mlp_config(**changes: Any) -> MLPGANConfig:
    """``baseline.training.model`` with ``changes``."""
    return MLPGANConfig(**_values(BLOCKS["baseline"].training.model, **changes))


def conditional_config(**changes: Any) -> ConditionalGANConfig:
    """``conditional.training.model`` on Fashion-MNIST and the bundled encoder, with ``changes``."""
    values = _values(BLOCKS["conditional"].training.model) | FASHION_MNIST | BUNDLED_TEXT
    return ConditionalGANConfig(**values | changes)


def embedding_config(**changes: Any) -> EmbeddingConfig:
    """``conditional.training.embedding`` on Fashion-MNIST, with ``changes``."""
    return EmbeddingConfig(
        **_values(BLOCKS["conditional"].training.embedding) | FASHION_MNIST | changes
    )


def evaluator_config(**changes: Any) -> EvaluatorConfig:
    """``evaluator.training.model`` with ``changes``."""
    return EvaluatorConfig(**_values(BLOCKS["evaluator"].training.model, **changes))


def autoencoder_config(**changes: Any) -> AutoencoderConfig:
    """``autoencoders.vanilla.model`` with ``changes``."""
    return AutoencoderConfig(**_values(BLOCKS["autoencoders"].vanilla.model, **changes))


def vae_config(**changes: Any) -> VAEConfig:
    """``autoencoders.vae.model`` with ``changes``."""
    return VAEConfig(**_values(BLOCKS["autoencoders"].vae.model, **changes))


def classifier_config(**changes: Any) -> ClassifierConfig:
    """``classifier.training.model``, multimodal over 30 words, with ``changes``."""
    values = _values(BLOCKS["classifier"].training.model) | {
        "modality": "multimodal",
        "vocab_size": 30,
    }
    return ClassifierConfig(**values | changes)


def text_encoder_params(**changes: Any) -> TextEncoderParams:
    """The bundled MiniLM as a base model reads text (conf/base's ``conditional.text_encoder``,
    frozen and without its head: :func:`~fashiongan.generation.base_encoder_params`), with
    ``changes``."""
    configured = BLOCKS["conditional"].text_encoder
    return overridden(base_encoder_params(configured, None, configured.pooling), **changes)
