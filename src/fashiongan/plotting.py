"""Figures shared by pipelines: image grids, loss curves and confusion matrices (pure: they
return a Figure)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Literal

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from matplotlib import font_manager  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from fashiongan.images import tile  # noqa: E402


def image_grid(
    images: torch.Tensor,
    ncols: int = 8,
    row_labels: Sequence[str] | None = None,
    title: str | None = None,
    pad: int = 4,
) -> Figure:
    """A figure of images in [-1, 1] laid out by :func:`fashiongan.images.tile` (one panel).

    ``row_labels`` writes a caption left of each row; ``pad`` pixels of white separate images.
    """
    pixels = tile(images, ncols, pad)  # (rows·(H+pad)+pad, cols·(W+pad)+pad, C)
    ncols = min(ncols, len(images))
    nrows = math.ceil(len(images) / ncols)
    label_width = 3.0 if row_labels else 0.0
    fig, ax = plt.subplots(figsize=(ncols * 0.9 + label_width, nrows * 0.9 + 0.4))
    ax.imshow(
        pixels.squeeze(-1) if pixels.shape[-1] == 1 else pixels, cmap="gray", vmin=0, vmax=255
    )
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if row_labels:
        height = images.shape[-2]
        centers = [pad + row * (height + pad) + height / 2 for row in range(nrows)]
        labels = [drawable(label) for label in row_labels[:nrows]]
        ax.set_yticks(centers[: len(row_labels)], labels, fontsize=8)
        ax.tick_params(axis="y", length=0)
    if title:
        fig.suptitle(drawable(title), fontsize=10)
    fig.tight_layout()
    return fig


def drawable(text: str) -> str:
    """``text`` without the characters no font of the figure can draw (an emoji in a caption).

    Matplotlib would draw an empty box for each and warn "Glyph … missing from font(s)" once per
    character and font, a dozen lines on the terminal for one emoji caption; dropping them keeps
    the words. The fonts checked are the default family's fallback list, as matplotlib uses it.
    """
    fonts = _default_fonts()
    kept = "".join(
        char for char in text if char.isspace() or any(f.get_char_index(ord(char)) for f in fonts)
    )
    return re.sub(r"[ \t]{2,}", " ", kept).strip() if kept != text else text


def _default_fonts() -> list:
    props = font_manager.FontProperties()
    # matplotlib ≥ 3.6 draws a missing glyph from the next font of the family list
    find_all = getattr(font_manager.fontManager, "_find_fonts_by_props", None)
    paths = find_all(props) if find_all is not None else [font_manager.findfont(props)]
    return [font_manager.get_font(path) for path in paths]


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


def confusion_figure(
    matrix: torch.Tensor | Sequence[Sequence[int]],
    class_names: Sequence[str],
    title: str,
    *,
    xlabel: str = "predicted",
    ylabel: str = "true",
    cells: Literal["counts", "shares"] = "counts",
) -> Figure:
    """A confusion matrix coloured by the share of each row (rows = true or requested class).

    Args:
        matrix: (n, n) counts, row = true class, column = predicted class.
        class_names: the n tick labels.
        title: above the matrix.
        xlabel, ylabel: axis names (e.g. "evaluator's class" / "requested class").
        cells: write the ``counts`` (non-zero cells) or the row ``shares`` (those ≥ 0.005)
            into the cells.
    """
    counts = torch.as_tensor(matrix).double()
    rates = counts / counts.sum(1, keepdim=True).clamp(min=1)
    n = len(class_names)
    fig, ax = plt.subplots(figsize=(0.75 * n + 2.5, 0.75 * n + 1.5))
    image = ax.imshow(rates.numpy(), cmap="Blues", vmin=0, vmax=1)
    for row in range(n):
        for col in range(n):
            shown = counts[row, col] > 0 if cells == "counts" else rates[row, col] >= 0.005
            if not shown:
                continue
            text = f"{int(counts[row, col])}" if cells == "counts" else f"{rates[row, col]:.2f}"
            color = "white" if rates[row, col] > 0.5 else "black"
            ax.text(col, row, text, ha="center", va="center", fontsize=7, color=color)
    ax.set_xticks(range(n), class_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), class_names, fontsize=8)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the row")
    fig.tight_layout()
    return fig
