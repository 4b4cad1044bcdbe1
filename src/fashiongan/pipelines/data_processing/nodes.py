"""Pure functions that turn verified idx bytes into model-ready tensors."""

from __future__ import annotations

import struct

import numpy as np
import torch

from fashiongan.pixels import from_uint8

_IDX_DTYPES = {0x08: np.uint8}


class IdxFormatError(ValueError):
    """The bytes are not a well-formed idx file."""


def parse_idx(data: bytes, name: str = "idx") -> np.ndarray:
    """Parse one idx file (big-endian magic, dims, then data).

    Args:
        data: the decompressed file.
        name: used in error messages.

    Returns:
        An array of shape given by the header (uint8).

    Raises:
        IdxFormatError: on a bad magic number, an unsupported type, or a size mismatch.
    """
    if len(data) < 4:
        raise IdxFormatError(f"{name}: {len(data)} bytes is too short for an idx header")
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code not in _IDX_DTYPES or not 1 <= ndim <= 3:
        raise IdxFormatError(
            f"{name}: bad magic number {data[:4].hex()} (expected 0x0801 or 0x0803)"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IdxFormatError(f"{name}: truncated header")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(dims))
    if len(data) - header != expected:
        raise IdxFormatError(
            f"{name}: header promises {dims} = {expected} values but {len(data) - header} follow"
        )
    return np.frombuffer(data, dtype=_IDX_DTYPES[dtype_code], offset=header).reshape(dims).copy()


def parse_fashion_mnist(
    raw: dict[str, bytes], class_names: tuple[str, ...]
) -> dict[str, torch.Tensor]:
    """Parse the four idx files and check that images, labels and classes agree.

    Returns:
        ``train_images``/``test_images`` uint8 (N, 28, 28) and ``train_labels``/``test_labels`` (N,).
    """
    out: dict[str, torch.Tensor] = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = parse_idx(raw[f"{prefix}-images-idx3-ubyte"], f"{prefix}-images")
        labels = parse_idx(raw[f"{prefix}-labels-idx1-ubyte"], f"{prefix}-labels")
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise IdxFormatError(f"{split}: {images.shape} images vs {labels.shape} labels")
        if labels.max() >= len(class_names):
            raise IdxFormatError(
                f"{split}: label {labels.max()} but {len(class_names)} class names"
            )
        out[f"{split}_images"] = torch.from_numpy(images)
        out[f"{split}_labels"] = torch.from_numpy(labels.astype(np.int64))
    return out


def stratified_split(
    labels: torch.Tensor, validation_fraction: float, seed: int
) -> dict[str, torch.Tensor]:
    """Split indices so that every class keeps the same share in train and validation.

    Returns:
        ``train_index`` and ``validation_index`` (sorted int64 tensors, disjoint, covering all).
    """
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    generator = torch.Generator().manual_seed(seed)
    train_parts, val_parts = [], []
    for cls in labels.unique(sorted=True):
        members = torch.nonzero(labels == cls).squeeze(1)
        members = members[torch.randperm(len(members), generator=generator)]
        n_val = round(len(members) * validation_fraction)
        val_parts.append(members[:n_val])
        train_parts.append(members[n_val:])
    return {
        "train_index": torch.cat(train_parts).sort().values,
        "validation_index": torch.cat(val_parts).sort().values,
    }


def split_train_validation(
    parsed: dict[str, torch.Tensor], validation_fraction: float, seed: int
) -> dict[str, torch.Tensor]:
    """Stratified validation split of the official training set (the test set stays untouched)."""
    return stratified_split(parsed["train_labels"], validation_fraction, seed)


def scale_images(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, H, W) → float32 (N, 1, H, W) in [-1, 1], the generator's tanh range."""
    return from_uint8(images).unsqueeze(1).contiguous()


def build_model_input(
    parsed: dict[str, torch.Tensor], split: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Training, validation and test tensors in [-1, 1] with their labels."""
    train_images, train_labels = parsed["train_images"], parsed["train_labels"]
    return {
        "train_images": scale_images(train_images[split["train_index"]]),
        "train_labels": train_labels[split["train_index"]],
        "validation_images": scale_images(train_images[split["validation_index"]]),
        "validation_labels": train_labels[split["validation_index"]],
        "test_images": scale_images(parsed["test_images"]),
        "test_labels": parsed["test_labels"],
    }


def summarise_dataset(
    model_input: dict[str, torch.Tensor], class_names: tuple[str, ...]
) -> dict[str, float]:
    """Counts per split and the value range, for DVC metrics and a quick sanity look."""
    summary: dict[str, float] = {}
    for split in ("train", "validation", "test"):
        images, labels = model_input[f"{split}_images"], model_input[f"{split}_labels"]
        summary[f"{split}_count"] = len(labels)
        summary[f"{split}_min"] = float(images.min()) if len(images) else 0.0
        summary[f"{split}_max"] = float(images.max()) if len(images) else 0.0
    counts = torch.bincount(model_input["train_labels"], minlength=len(class_names))
    summary["train_class_balance"] = float(counts.min() / counts.max()) if counts.max() else 0.0
    return summary
