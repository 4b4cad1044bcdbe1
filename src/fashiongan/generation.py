"""Sampling from any trained generator: the baseline takes noise, the conditional GAN text and an image."""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from fashiongan.datasets.safetensors import load_module
from fashiongan.models.conditional_gan import ConditionalGenerator


class GenerationError(ValueError):
    """A request the model cannot serve (no model, empty text, …); one-line message."""


def load_generator(path: str | Path) -> torch.nn.Module:
    """Load a generator saved by the training pipelines, with a clear error if it is missing."""
    path = Path(path)
    if not path.is_file():
        raise GenerationError(f"no model at {path}: train one first (make train)")
    return load_module(path)


def text_encoder(model_name_or_path: str, pooling: str):
    """The BERT encoder a conditional generator was trained with (cached per process).

    A folder saved beside the generator by training (``TextEncoder.save``) loads with the
    settings it was trained with; anything else is a base model name or path. A folder saved
    again (a new training run) is loaded again.
    """
    from fashiongan.text.encoder import SETTINGS_FILE

    settings = Path(str(model_name_or_path)) / SETTINGS_FILE
    stamp = settings.stat().st_mtime_ns if settings.is_file() else None
    return _text_encoder(model_name_or_path, pooling, stamp)


@functools.lru_cache(maxsize=4)
def _text_encoder(model_name_or_path: str, pooling: str, stamp: int | None):
    from fashiongan.text.encoder import TextEncoder

    source = None if model_name_or_path in ("bundled", "", None) else model_name_or_path
    if source and str(source).startswith("./"):
        raise GenerationError(
            f"the model names its text encoder {source!r}, relative to the model file: load the "
            "model from its file (load_generator or the catalog) so that the path resolves"
        )
    if stamp is not None:
        encoder = TextEncoder.from_saved(source, device="cpu")
        if encoder.pooling != pooling:
            raise GenerationError(
                f"{source} pools with {encoder.pooling!r} but the model was trained with "
                f"{pooling!r}: the model and its text encoder do not belong together"
            )
        return encoder
    return TextEncoder(source, pooling=pooling, device="cpu")


def generate(
    generator: torch.nn.Module,
    n: int,
    seed: int = 0,
    text: str | None = None,
    image: torch.Tensor | None = None,
) -> torch.Tensor:
    """Draw ``n`` images in [-1, 1], (n, C, H, W).

    Args:
        generator: an ``MLPGenerator`` (noise only) or a ``ConditionalGenerator``.
        text: the query (required by conditional generators).
        image: optional reference (1, C, H, W) in [-1, 1] for a composed query.
    """
    if n < 1:
        raise GenerationError(f"n must be ≥ 1, got {n}")
    noise = torch.Generator().manual_seed(seed)
    generator = generator.eval()
    config = generator.config
    with torch.no_grad():
        if not isinstance(generator, ConditionalGenerator):
            if text or image is not None:
                raise GenerationError("this model is unconditional: it takes no --text or --image")
            return generator(torch.randn(n, config.noise_dim, generator=noise))
        if text is None or not text.strip():
            raise GenerationError("the conditional model needs a non-empty --text")
        features = text_encoder(config.text_encoder, config.text_pooling).encode([text.strip()])
        z = torch.randn(n, config.noise_dim, generator=noise)
        reference = None if image is None else image.expand(n, -1, -1, -1)
        return generator(z, features.expand(n, -1), reference)
