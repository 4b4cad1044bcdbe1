"""Figures shared by pipelines: image grids and loss curves (pure: they return a Figure)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from fashiongan.pixels import to_uint8  # noqa: E402


def image_grid(
    images: torch.Tensor,
    ncols: int = 8,
    row_labels: Sequence[str] | None = None,
    title: str | None = None,
) -> Figure:
    """A grid of images in [-1, 1]; ``row_labels`` writes a caption left of each row."""
    pixels = to_uint8(images)
    nrows = math.ceil(len(pixels) / ncols)
    label_width = 3.0 if row_labels else 0.0
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(ncols * 0.9 + label_width, nrows * 0.9 + 0.4), squeeze=False
    )
    for index, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        if index < len(pixels):
            image = pixels[index]
            ax.imshow(
                image.squeeze(-1) if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=255
            )
    if row_labels:
        for row, label in enumerate(row_labels[:nrows]):
            axes[row, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def loss_curves(history: pd.DataFrame, title: str = "Training") -> Figure:
    """Loss columns (left) and accuracy columns (right) against ``step``."""
    loss_cols = [c for c in history.columns if "loss" in c]
    other_cols = [c for c in history.columns if c not in loss_cols and c != "step"]
    fig, axes = plt.subplots(
        1, 2 if other_cols else 1, figsize=(11 if other_cols else 6, 3.8), squeeze=False
    )
    for column in loss_cols:
        axes[0, 0].plot(history["step"], history[column], label=column)
    axes[0, 0].set(xlabel="iteration", ylabel="loss", title=f"{title}: losses")
    axes[0, 0].legend()
    if other_cols:
        for column in other_cols:
            axes[0, 1].plot(history["step"], history[column], label=column)
        axes[0, 1].set(xlabel="iteration", title=f"{title}: discriminator")
        axes[0, 1].legend()
    fig.tight_layout()
    return fig
