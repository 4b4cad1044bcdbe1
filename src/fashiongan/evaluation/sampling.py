"""Draw each model's evaluation samples: one image per evaluated test item, asked for by its caption.

Conditional generators draw from the item's test caption, so the requested class and attributes
are known and can be checked; unconditional ones (MLP GAN, VAE decoder) draw from noise alone and
are marked "not asked" (-1). The same seed gives the same noise to every model.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import torch

from fashiongan.compute import batched
from fashiongan.generation import text_encoder
from fashiongan.models.conditional_gan import ConditionalGenerator
from fashiongan.text.captions import ATTRIBUTES, stated_attributes

log = logging.getLogger(__name__)


def item_captions(captions: pd.DataFrame, split: str = "test") -> pd.DataFrame:
    """One caption row per item of ``split``, indexed by the item's position in that split.

    The caption table may hold several captions an item (``per_item``); the first one counts.
    """
    items = captions[captions["split"] == split].drop_duplicates("index").set_index("index")
    return items.sort_index()


def catalog_captions(captions: pd.DataFrame) -> pd.DataFrame:
    """The test items' captions: the retrieval catalog and the evaluation's prompts."""
    return item_captions(captions, "test")


def caption_texts(
    captions: pd.DataFrame, index: torch.Tensor | Sequence[int], split: str = "test"
) -> list[str]:
    """The caption of each item at ``index`` (positions in ``split``), in that order."""
    positions = index.tolist() if isinstance(index, torch.Tensor) else list(index)
    return item_captions(captions, split).loc[positions, "caption"].astype(str).tolist()


def sample_subset(n_items: int, n: int | None, seed: int) -> torch.Tensor:
    """Positions of the ``n`` evaluated test items (all of them, in order, for None or n ≥ N)."""
    if n is None or n >= n_items:
        return torch.arange(n_items)
    if n < 6:
        raise ValueError(f"evaluation.n_samples must be >= 6 (k-NN metrics need k + 1), got {n}")
    return torch.randperm(n_items, generator=torch.Generator().manual_seed(seed))[:n].sort().values


def requested_attributes(texts: list[str]) -> dict[str, torch.Tensor]:
    """The tone / fit / pattern each caption asks for (-1 where it does not mention one)."""
    stated = stated_attributes(texts)
    return {name: stated[:, i] for i, name in enumerate(ATTRIBUTES)}


def encode_texts(config: Any, texts: list[str], batch_size: int = 256) -> torch.Tensor:
    """BERT features (N, text_dim) of ``texts`` with the encoder a conditional model was trained
    with (``config.text_encoder``, ``config.text_pooling``); refused if the widths differ."""
    encoder = text_encoder(config.text_encoder, config.text_pooling)
    if encoder.dim != config.text_dim:
        raise ValueError(
            f"the text encoder {config.text_encoder!r} gives {encoder.dim}-d features but the "
            f"model expects text_dim={config.text_dim}"
        )
    _, embeddings, index = encoder.encode_unique(texts, batch_size=batch_size)
    return embeddings[index]


def sample_model(
    generator: torch.nn.Module,
    texts: list[str],
    labels: torch.Tensor,
    index: torch.Tensor,
    seed: int,
    batch_size: int,
    device: torch.device | str,
) -> dict[str, torch.Tensor]:
    """One generated image per evaluated item; the noise is seeded by ``seed``.

    Args:
        generator: a ``ConditionalGenerator`` (asked with ``texts``) or any noise → image module.
        texts: the evaluated items' captions; ``labels`` their classes; ``index`` their positions.

    Returns:
        ``images`` (N, C, H, W) in [-1, 1], ``index``, ``labels`` (requested class, -1 for
        unconditional models), requested ``tone``, ``fit``, ``pattern`` (-1 = not asked) and,
        for conditional models, ``text`` (N, D) features.
    """
    generator = generator.eval().to(device)
    noise = torch.Generator().manual_seed(seed)
    z = torch.randn(len(index), generator.config.noise_dim, generator=noise)
    if isinstance(generator, ConditionalGenerator):
        text = encode_texts(generator.config, texts)
        images = batched(generator, z, text, batch_size=batch_size, device=device)
        asked = {"labels": labels, **requested_attributes(texts), "text": text}
    else:
        images = batched(generator, z, batch_size=batch_size, device=device)
        unasked = torch.full((len(index),), -1, dtype=torch.long)
        asked = {"labels": unasked, **{name: unasked.clone() for name in ATTRIBUTES}}
    generator.cpu()
    return {"images": images, "index": index.clone(), **asked}


def sample_models(
    models: Mapping[str, torch.nn.Module],
    test_labels: torch.Tensor,
    captions: pd.DataFrame,
    n_samples: int | None,
    seed: int,
    batch_size: int,
    device: torch.device | str,
) -> dict[str, dict[str, torch.Tensor]]:
    """Every model's samples for the same ``n_samples`` test items (see :func:`sample_model`).

    Args:
        models: name → generator.
        test_labels: (N_test,) classes of the test split.
        captions: the caption table (its test split asks conditional models).
        n_samples: evaluated test items (None: all of them).
    """
    if not models:
        raise ValueError(
            "no generator to evaluate: train one (models/<name>/generator.safetensors)"
        )
    test_labels = test_labels.long()
    index = sample_subset(len(test_labels), n_samples, seed)
    texts = caption_texts(captions, index)
    out = {}
    for name, generator in models.items():
        out[name] = sample_model(
            generator, texts, test_labels[index], index, seed, batch_size, device
        )
        images = out[name]["images"]
        log.info("%s: %d samples %s", name, len(images), tuple(images.shape[1:]))
    return out
