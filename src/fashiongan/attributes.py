"""Measurable attributes of Fashion-MNIST items: tone, fit and pattern.

The same functions label the real training data (to write captions) and judge GENERATED images
(to check that a generated "dark slim dress" is dark and slim), so they take any image batch:
float (N, 1, H, W) or (N, H, W) in [-1, 1] (the generator's tanh range) or uint8 in [0, 255].

Measures (pixel values first mapped to [0, 1], as displayed: 0 black background, 1 white):

- ``intensity``: mean value of the item's pixels, the pixels above ``mask_threshold``.
  High = a light item on screen, low = a dark one.
- ``width``: mean row width of the item divided by its height (both in pixels), i.e. how broad
  the silhouette is for its length. Chosen over the alternatives after looking at the extremes of
  each class on the real data:

  * fraction of occupied columns saturates: Fashion-MNIST scales each item's longest side to
    the frame, so shoes and bags almost always span all 28 columns (sneakers take 4 distinct
    values; per-class tertiles degenerate to 100 % / 0 % / 0 %);
  * area mixes width with length (a short dress reads as "slim");
  * mean row width alone equals this measure for full-height garments but, for items limited by
    the frame width (shoes, bags), measures solidity instead of shape; dividing by the height
    makes slim = tall and narrow (stilettos, high boots, shoulder bags) and wide = low and broad
    (flip-flops, low sneakers, clutches, cropped tops).

- ``texture``: mean absolute 4-neighbour Laplacian over the item's interior pixels (item pixels
  whose 3x3 neighbourhood is entirely item), so the outline of the silhouette does not count as
  pattern. Stripes, prints and logos score high; plain items, light or dark, score low. Items with
  no interior (thin sandal straps) score 0, i.e. plain.

The mask threshold (0.05, about 13/255) is small so that dark items keep their full silhouette
(at 0.1 the "slimmest" items of every class were simply the darkest), yet above the faint
background noise a generator leaves.

Attributes are per-class tertiles (tone, fit) and a per-class median (pattern) of the training
data, so every class has dark, medium and light items in equal shares: "dark" means dark *for a
coat*. :func:`fit_thresholds` computes the cut points, :func:`assign` applies them.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

TONES = ("dark", "medium", "light")
FITS = ("slim", "regular", "wide")
PATTERNS = ("plain", "patterned")

DEFAULT_MASK_THRESHOLD = 0.05
_CHUNK = 8192
_LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """Map a batch to float32 (N, 1, H, W) in [0, 1].

    Args:
        images: uint8 (N, H, W) / (N, 1, H, W) in [0, 255], or float (N, H, W) / (N, 1, H, W)
            in [-1, 1].

    Raises:
        TypeError: when ``images`` is not a tensor.
        ValueError: on another shape or channel count, or float values outside [-1, 1].
    """
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}")
    if images.ndim == 3:
        images = images.unsqueeze(1)
    if images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(
            f"images must be (N, H, W) or (N, 1, H, W) grayscale, got shape {tuple(images.shape)}"
        )
    if images.dtype == torch.uint8:
        return images.float().div(255.0)
    if not images.is_floating_point():
        raise ValueError(f"images must be uint8 or floating point, got {images.dtype}")
    images = images.detach().float()
    if images.numel() and (images.min() < -1.01 or images.max() > 1.01):
        raise ValueError(
            "float images must be in [-1, 1] (the generator's tanh range), got values in "
            f"[{float(images.min()):.3f}, {float(images.max()):.3f}]; pass uint8 for [0, 255]"
        )
    return images.clamp(-1.0, 1.0).add(1.0).div(2.0)


def _measure_chunk(x: torch.Tensor, mask_threshold: float) -> dict[str, torch.Tensor]:
    # x: (n, 1, H, W) in [0, 1]
    mask = (x > mask_threshold).float()  # (n, 1, H, W)
    n_pixels = mask.sum((1, 2, 3))  # (n,)
    intensity = (x * mask).sum((1, 2, 3)) / n_pixels.clamp(min=1)

    n_rows = mask.amax(3).sum((1, 2))  # rows holding any item pixel, (n,)
    mean_row_width = n_pixels / n_rows.clamp(min=1)
    width = mean_row_width / n_rows.clamp(min=1)

    interior = F.max_pool2d(1.0 - mask, 3, stride=1, padding=1) == 0  # eroded mask
    laplacian = F.conv2d(x, _LAPLACIAN.to(x.device), padding=1).abs()  # (n, 1, H, W)
    n_interior = interior.sum((1, 2, 3))
    texture = (laplacian * interior).sum((1, 2, 3)) / n_interior.clamp(min=1)
    return {"intensity": intensity, "width": width, "texture": texture}


def measure(
    images: torch.Tensor, mask_threshold: float = DEFAULT_MASK_THRESHOLD
) -> dict[str, torch.Tensor]:
    """Raw per-image measures (see the module docstring for their definitions).

    Args:
        images: a batch as accepted by :func:`to_unit`.
        mask_threshold: pixels above it (in [0, 1] display units) belong to the item.

    Returns:
        ``intensity``, ``width`` and ``texture``: float32 tensors of shape (N,). An empty image
        (no item pixel) measures 0 everywhere.
    """
    if not 0.0 <= mask_threshold < 1.0:
        raise ValueError(f"mask_threshold must be in [0, 1), got {mask_threshold}")
    x = to_unit(images)
    parts = [_measure_chunk(chunk, mask_threshold) for chunk in x.split(_CHUNK)]
    if not parts:
        empty = torch.zeros(0)
        return {"intensity": empty, "width": empty.clone(), "texture": empty.clone()}
    return {key: torch.cat([part[key] for part in parts]).cpu() for key in parts[0]}


def _check_labels(labels: torch.Tensor, n: int, n_classes: int) -> torch.Tensor:
    labels = torch.as_tensor(labels).long().cpu()
    if labels.ndim != 1 or len(labels) != n:
        raise ValueError(f"labels must be a 1-D tensor of length {n}, got {tuple(labels.shape)}")
    if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(
            f"labels must be in [0, {n_classes}), got [{int(labels.min())}, {int(labels.max())}]"
        )
    return labels


def _per_class_quantiles(
    values: torch.Tensor, labels: torch.Tensor, q: torch.Tensor, n_classes: int, name: str
) -> torch.Tensor:
    overall = torch.quantile(values, q)
    cuts = overall.repeat(n_classes, 1)  # (C, len(q))
    for cls in range(n_classes):
        members = values[labels == cls]
        if len(members):
            cuts[cls] = torch.quantile(members, q)
        else:
            log.warning(
                "%s: class %d has no training items; using the overall cut points", name, cls
            )
    return cuts


def fit_thresholds(
    images: torch.Tensor,
    labels: torch.Tensor,
    n_classes: int = 10,
    mask_threshold: float = DEFAULT_MASK_THRESHOLD,
) -> dict[str, torch.Tensor]:
    """Per-class cut points learned on the training split.

    Tone and fit cut at the class's tertiles of ``intensity`` and ``width``; pattern at the
    class's median ``texture`` (half of each class is "patterned": Fashion-MNIST has no pattern
    labels, and a median keeps both caption values equally frequent for the conditional model).
    A class absent from ``labels`` falls back to the cut points of all items (with a warning).

    Args:
        images: training images (see :func:`to_unit`).
        labels: int class per image, in [0, n_classes).
        n_classes: number of classes.
        mask_threshold: passed to :func:`measure` and stored so :func:`assign` reuses it.

    Returns:
        ``tone_cuts`` (C, 2), ``fit_cuts`` (C, 2), ``pattern_cuts`` (C, 1) float32 and
        ``mask_threshold`` (a 0-d tensor), ready for ``TensorDictDataset``.
    """
    measures = measure(images, mask_threshold)
    labels = _check_labels(labels, len(measures["intensity"]), n_classes)
    if not len(labels):
        raise ValueError("fit_thresholds needs at least one image")
    tertiles = torch.tensor([1 / 3, 2 / 3])
    return {
        "tone_cuts": _per_class_quantiles(
            measures["intensity"], labels, tertiles, n_classes, "tone"
        ),
        "fit_cuts": _per_class_quantiles(measures["width"], labels, tertiles, n_classes, "fit"),
        "pattern_cuts": _per_class_quantiles(
            measures["texture"], labels, torch.tensor([0.5]), n_classes, "pattern"
        ),
        "mask_threshold": torch.tensor(float(mask_threshold)),
    }


def _bucket(values: torch.Tensor, cuts: torch.Tensor) -> torch.Tensor:
    # values (N,), cuts (N, k) → number of cut points strictly below each value, (N,) int64
    return (values.unsqueeze(1) > cuts).sum(1).long()


def assign(
    images: torch.Tensor, labels: torch.Tensor, thresholds: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Discrete attributes of each image relative to its class's cut points.

    Args:
        images: a batch (see :func:`to_unit`), real or generated.
        labels: the class of each image (the conditioning class for generated ones).
        thresholds: the output of :func:`fit_thresholds` (extra keys are ignored).

    Returns:
        int64 (N,) tensors ``tone`` (0 dark, 1 medium, 2 light), ``fit`` (0 slim, 1 regular,
        2 wide) and ``pattern`` (0 plain, 1 patterned).
    """
    missing = {"tone_cuts", "fit_cuts", "pattern_cuts"} - set(thresholds)
    if missing:
        raise KeyError(f"thresholds lack {sorted(missing)}: pass the output of fit_thresholds")
    mask_threshold = float(thresholds.get("mask_threshold", DEFAULT_MASK_THRESHOLD))
    measures = measure(images, mask_threshold)
    n_classes = len(thresholds["tone_cuts"])
    labels = _check_labels(labels, len(measures["intensity"]), n_classes)
    return {
        "tone": _bucket(measures["intensity"], thresholds["tone_cuts"].float()[labels]),
        "fit": _bucket(measures["width"], thresholds["fit_cuts"].float()[labels]),
        "pattern": _bucket(measures["texture"], thresholds["pattern_cuts"].float()[labels]),
    }
