"""The evaluator: a compact Fashion-MNIST CNN classifier that judges generated images.

It is trained on real images only (``kedro run --pipelines=train_evaluator``) and never sees a
generated image in training. Its penultimate layer (:meth:`EvaluatorCNN.features`) is the feature
space of the fast FID/KID/precision/recall metrics, and its argmax is the judge of conditional
accuracy.

Architecture (default config; 428k parameters)::

    (B, 1, 28, 28) ─ conv3×3 → BN → ReLU            → maxpool 2   (B, 32, 14, 14)
                   ─ [conv3×3 → BN → ReLU] × 2      → maxpool 2   (B, 64, 7, 7)
                   ─ conv3×3 → BN → ReLU            → maxpool 2   (B, 128, 3, 3)
                   ─ flatten → linear → BN → ReLU                 features (B, 256)
                   ─ dropout 0.3 → linear                         logits   (B, 10)

"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import model_validator
from torch import nn

from fashiongan.config import EvaluatorModel
from fashiongan.models import without_retired

#: Options that left the code, with the value the code now always has: files of that value load.
RETIRED_OPTIONS: dict[str, Any] = {"block_dropout": 0.0}


class EvaluatorConfig(EvaluatorModel):
    """The block ``evaluator.training.model`` as the network reads it (its keys live there)."""

    @model_validator(mode="after")
    def _blocks_fit(self) -> EvaluatorConfig:
        if len(self.channels) != len(self.convs_per_block) or not self.channels:
            raise ValueError(
                f"channels {self.channels} and convs_per_block {self.convs_per_block} must be "
                "non-empty and of the same length (one entry per conv block)."
            )
        if self.image_size // 2 ** len(self.channels) < 1:
            raise ValueError(
                f"{len(self.channels)} blocks halve a {self.image_size}px image below one pixel."
            )
        return self

    @classmethod
    def from_saved(cls, values: dict[str, Any]) -> EvaluatorConfig:
        """The config a model file's metadata names, also from files written before an option
        left the code (:func:`fashiongan.models.without_retired`)."""
        return cls.model_validate(without_retired(values, RETIRED_OPTIONS))

    @property
    def final_size(self) -> int:
        """Spatial size after the blocks (each max-pool floors: 28 → 14 → 7 → 3)."""
        size = self.image_size
        for _ in self.channels:
            size //= 2
        return size


class ConvBlock(nn.Module):
    """``n`` × (conv3×3 → BN → ReLU), then 2×2 max-pool: (B, C, H, W) → (B, C', H/2, W/2)."""

    def __init__(self, in_channels: int, out_channels: int, n_convs: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(n_convs):
            layers += [
                nn.Conv2d(
                    in_channels if i == 0 else out_channels, out_channels, 3, padding=1, bias=False
                ),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(inplace=True),
            ]
        self.convs = nn.Sequential(*layers)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.convs(x))


class EvaluatorCNN(nn.Module):
    """CNN classifier; ``features`` is the penultimate layer, ``forward`` returns class logits."""

    config_class = EvaluatorConfig

    def __init__(self, config: EvaluatorConfig) -> None:
        super().__init__()
        self.config = config
        blocks, width = [], config.in_channels
        for out, n_convs in zip(config.channels, config.convs_per_block, strict=True):
            blocks.append(ConvBlock(width, out, n_convs))
            width = out
        self.blocks = nn.Sequential(*blocks)
        flat = width * config.final_size**2
        self.embed = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, config.feature_dim, bias=False),
            nn.BatchNorm1d(config.feature_dim),
            nn.ReLU(inplace=True),
        )
        self.head = nn.Sequential(
            nn.Dropout(config.dropout), nn.Linear(config.feature_dim, config.n_classes)
        )

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer features (B, feature_dim) of images (B, C, H, W) in [-1, 1]."""
        c = self.config
        if images.ndim != 4 or images.shape[1:] != (c.in_channels, c.image_size, c.image_size):
            raise ValueError(
                f"EvaluatorCNN expects images of shape (B, {c.in_channels}, {c.image_size}, "
                f"{c.image_size}) in [-1, 1], got {tuple(images.shape)}."
            )
        return self.embed(self.blocks(images))  # (B, D)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))  # (B, n_classes) logits

    @torch.no_grad()
    def predict(
        self, images: torch.Tensor, batch_size: int = 1000
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Eval-mode (features (N, D), predicted labels (N,)) in batches, on the module's device."""
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        feats, preds = [], []
        for start in range(0, len(images), batch_size):
            f = self.features(images[start : start + batch_size].to(device))
            feats.append(f.cpu())
            preds.append(self.head(f).argmax(1).cpu())
        self.train(was_training)
        return torch.cat(feats), torch.cat(preds)
