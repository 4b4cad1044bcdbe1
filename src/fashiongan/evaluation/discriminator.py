"""A trained discriminator as a judge on held-out data: real test images (positive) vs the rest.

Beside the generated images it is scored on two references: real *training* images (a
discriminator that generalises cannot tell them from real test images: accuracy ≈ 0.5; far above
means it memorised its training set) and uniform noise (any working discriminator rejects it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
import torch

from fashiongan.compute import batched
from fashiongan.evaluation.metrics import binary_classification_report
from fashiongan.evaluation.sampling import caption_texts, encode_texts
from fashiongan.models.conditional_gan import ConditionalDiscriminator
from fashiongan.training.losses import discriminator_loss, generator_loss


def discriminator_metrics(
    discriminator: torch.nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    kind: str,
    real_text: torch.Tensor | None = None,
    fake_text: torch.Tensor | None = None,
    batch_size: int = 500,
    device: torch.device | str = "cpu",
) -> dict[str, float]:
    """The discriminator on a held-out set: real images (positive) vs ``fake`` ones.

    A score above 0 means "real": sigmoid(logit) > 0.5 for the BCE-trained MLP, a positive
    hinge critic score for the conditional one (which also takes each image's caption features).

    Returns:
        accuracy, precision, recall, F1 (positive = real), the confusion counts, ``d_loss``
        and ``g_loss`` (the training losses of ``kind`` on these scores, no label smoothing).
    """
    discriminator = discriminator.eval().to(device)
    if isinstance(discriminator, ConditionalDiscriminator):
        if real_text is None or fake_text is None:
            raise ValueError("a conditional discriminator needs the caption features of each image")
        real_scores = batched(discriminator, real, real_text, batch_size=batch_size, device=device)
        fake_scores = batched(discriminator, fake, fake_text, batch_size=batch_size, device=device)
    else:
        real_scores = batched(discriminator, real, batch_size=batch_size, device=device)
        fake_scores = batched(discriminator, fake, batch_size=batch_size, device=device)
    discriminator.cpu()
    y_true = torch.cat([torch.ones(len(real)), torch.zeros(len(fake))]).long()
    y_pred = (torch.cat([real_scores, fake_scores]) > 0).long()
    report = binary_classification_report(y_true, y_pred)
    report["d_loss"] = float(
        discriminator_loss(kind, real_scores, fake_scores, fake_scores, real_label=1.0)
    )
    report["g_loss"] = float(generator_loss(kind, fake_scores))
    return report


def loss_kind(name: str, discriminator: torch.nn.Module, given: Mapping[str, str]) -> str:
    """The loss model ``name``'s discriminator was trained with: ``given[name]``, else ``hinge``
    for a conditional discriminator and ``bce`` for the MLP one (their training defaults)."""
    if given.get(name):
        return str(given[name])
    return "hinge" if isinstance(discriminator, ConditionalDiscriminator) else "bce"


def train_caption_features(
    config: Any,
    captions: pd.DataFrame,
    train_index: torch.Tensor,
    cache: dict[tuple, torch.Tensor],
) -> torch.Tensor:
    """Caption features of the training items at ``train_index`` (the floor row's "fakes"),
    encoded once per text encoder (``cache`` is keyed by encoder and pooling)."""
    key = (config.text_encoder, config.text_pooling)
    if key not in cache:
        cache[key] = encode_texts(config, caption_texts(captions, train_index, split="train"))
    return cache[key]


def score_discriminator(
    discriminator: torch.nn.Module,
    kind: str,
    sample: Mapping[str, torch.Tensor],
    real: torch.Tensor,
    references: Mapping[str, torch.Tensor],
    train_text: torch.Tensor | None,
    batch_size: int,
    device: torch.device | str,
) -> dict[str, Any]:
    """D on test-real vs generated, and beside it vs real training images (floor) and noise.

    Args:
        sample: the model's samples (``images`` and, from a conditional model, ``text``).
        real: the evaluated test images; ``references``: ``floor`` and ``noise`` images.
        train_text: caption features of the floor's training images (conditional D only).

    Returns:
        ``loss`` (the kind) and :func:`discriminator_metrics` of the samples, plus ``floor`` and
        ``noise`` entries; or a ``note`` when a conditional D meets unconditional samples.
    """
    conditional = isinstance(discriminator, ConditionalDiscriminator)
    text = sample.get("text") if conditional else None
    if conditional and text is None:
        return {"note": "conditional discriminator but unconditional samples: skipped"}
    common = {"kind": kind, "batch_size": batch_size, "device": device, "real_text": text}
    out: dict[str, Any] = {"loss": kind}
    out.update(
        discriminator_metrics(discriminator, real, sample["images"], fake_text=text, **common)
    )
    out["floor"] = discriminator_metrics(
        discriminator, real, references["floor"], fake_text=train_text, **common
    )
    out["noise"] = discriminator_metrics(
        discriminator, real, references["noise"], fake_text=text, **common
    )
    return out
