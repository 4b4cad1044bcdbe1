"""Sampling from any trained generator: the baseline takes noise, the conditional GAN text and an image."""

from __future__ import annotations

import functools
from pathlib import Path

import torch
from kedro.io import DatasetError

from fashiongan.config import ConfigError, TextEncoderParams, load_block, overridden
from fashiongan.datasets.safetensors import load_module
from fashiongan.errors import one_line
from fashiongan.models.conditional_gan import ConditionalGenerator
from fashiongan.models.mlp_gan import MLPGenerator

#: The modules that draw images; anything else saved in ``models/`` (a discriminator, the
#: embedder) loads fine but would fail later with a shape error, so it is refused by name.
GENERATORS = (MLPGenerator, ConditionalGenerator)
#: The most images a PNG grid holds: the grid is one panel, but its pixels grow with n.
MAX_GRID_IMAGES = 256
#: The most memory one request may take for its images alone (n × C × H × W float32).
MAX_REQUEST_BYTES = 2 * 1024**3


class GenerationError(ValueError):
    """A request the model cannot serve (no model, empty text, …); one-line message."""


def load_generator(path: str | Path) -> torch.nn.Module:
    """Load a generator saved by the training pipelines; anything else is refused in one line
    that names the file and what it is (unreadable, a training checkpoint, another network)."""
    path = Path(path)
    if not path.is_file():
        raise GenerationError(f"no model at {path}: train one first (make train)")
    _refuse_non_generator(path, _metadata(path))
    try:
        module = load_module(path)
    except (DatasetError, RuntimeError, KeyError) as err:  # unreadable, or weights that don't fit
        raise GenerationError(
            f"{path} could not be loaded as a generator ({one_line(err)}): train it again "
            "(make train) or give --model another generator.safetensors"
        ) from err
    if not isinstance(module, GENERATORS):
        raise GenerationError(f"{path} holds a {type(module).__name__}, not a generator")
    return module


def _metadata(path: Path) -> dict[str, str]:
    """The file's safetensors metadata (what it holds), or one line saying it is no model."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as err:
        raise GenerationError(
            f"{path} is not a readable safetensors model ({err}): train it again (make train) "
            "or give --model a generator.safetensors from models/<name>/"
        ) from err


def _refuse_non_generator(path: Path, metadata: dict[str, str]) -> None:
    """A training checkpoint or another network (discriminator, embedder) is named as such."""
    if "class" not in metadata and "state" in metadata:
        parts = path.parts
        family = parts[parts.index("checkpoints") + 1] if "checkpoints" in parts[:-2] else "<name>"
        raise GenerationError(
            f"{path} is a training checkpoint: use the generator in models/{family}/"
        )
    class_name = metadata.get("class", "").rpartition(".")[2]
    if class_name in {cls.__name__ for cls in GENERATORS}:
        return
    what = "a discriminator" if "Discriminator" in class_name else f"a {class_name or 'file'}"
    beside = path.parent / "generator.safetensors"
    hint = f"use {beside}" if beside.is_file() else "give --model a generator.safetensors"
    raise GenerationError(f"{path} is {what}, not a generator: {hint}")


def check_request_size(generator: torch.nn.Module, n: int) -> None:
    """Refuse, before any work, a request whose images alone would exceed
    :data:`MAX_REQUEST_BYTES` (n × C × H × W × 4 bytes): it would exhaust memory, not fail."""
    config = generator.config
    per_image = config.channels * config.image_size * config.image_size * 4
    if n * per_image > MAX_REQUEST_BYTES:
        raise GenerationError(
            f"n={n} images would take {n * per_image / 1024**3:.1f} GiB (n × {config.channels} × "
            f"{config.image_size} × {config.image_size} × 4 bytes), over the "
            f"{MAX_REQUEST_BYTES // 1024**3} GiB bound: ask for at most "
            f"{MAX_REQUEST_BYTES // per_image} at a time"
        )


def text_encoder(model_name_or_path: str, pooling: str):
    """The BERT encoder a conditional generator was trained with (cached per process).

    A folder saved beside the generator by training (``TextEncoder.save``) loads with the
    settings it was trained with; anything else is a base model name or path, read as
    :func:`base_encoder_params` says. A folder saved again (a new training run) is loaded again.
    """
    from fashiongan.text.loading import SETTINGS_FILE

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
    params = base_encoder_params(_configured_encoder(), source, pooling)
    return TextEncoder.from_params(params, device="cpu")


def base_encoder_params(
    configured: TextEncoderParams, model_name_or_path: str | None, pooling: str
) -> TextEncoderParams:
    """How a base model reads text (a generator naming ``bundled`` or a Hugging Face name
    instead of the encoder saved beside it; a search with no conditional model): as the
    ``configured`` block (``conditional.text_encoder``: its length, its batch size) with the
    generator's pooling, and nothing trained (no head, no tuned layer)."""
    return overridden(
        configured,
        model_name_or_path=model_name_or_path,
        pooling=pooling,
        trainable_top_layers=0,
        head="none",
    )


def configured_text_encoder():
    """conf/base's ``conditional.text_encoder`` read as a base model (frozen, no head): the
    encoder of a search with no conditional model (cached per process, as
    :func:`text_encoder`)."""
    block = _configured_encoder()
    return text_encoder(block.model_name_or_path or "bundled", block.pooling)


def _configured_encoder() -> TextEncoderParams:
    """conf/base's ``conditional.text_encoder`` (the working directory is the project root).

    Raises:
        GenerationError: no conf/base there, or its block is bad.
    """
    try:
        return load_block("conditional").text_encoder
    except ConfigError as err:
        raise GenerationError(
            f"{err}: a base text model reads text as conditional.text_encoder says; run from "
            "the project root"
        ) from err


def generate(
    generator: torch.nn.Module,
    n: int,
    seed: int = 0,
    text: str | None = None,
    image: torch.Tensor | None = None,
    features: torch.Tensor | None = None,
) -> torch.Tensor:
    """Draw ``n`` images in [-1, 1], (n, C, H, W).

    Args:
        generator: an ``MLPGenerator`` (noise only) or a ``ConditionalGenerator``.
        text: the query (required by conditional generators).
        image: optional reference (1, C, H, W) in [-1, 1] for a composed query.
        features: ``text`` already encoded, (1, D): a caller that also ranks by the text vector
            (the search service) encodes it once.
    """
    if n < 1:
        raise GenerationError(f"n must be ≥ 1, got {n}")
    check_request_size(generator, n)
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
        if features is None:
            encoder = text_encoder(config.text_encoder, config.text_pooling)
            features = encoder.encode([text.strip()])
        z = torch.randn(n, config.noise_dim, generator=noise)
        reference = None if image is None else image.expand(n, -1, -1, -1)
        return generator(z, features.expand(n, -1), reference)
