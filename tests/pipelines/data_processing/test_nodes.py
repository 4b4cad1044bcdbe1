import numpy as np
import pytest
import torch

from fashiongan.pipelines.data_processing.nodes import (
    IdxFormatError,
    build_model_input,
    parse_fashion_mnist,
    parse_idx,
    scale_images,
    stratified_split,
)
from tests.conftest import idx_bytes

CLASSES = [str(i) for i in range(10)]


def test_parse_idx_images_and_labels():
    images = np.arange(2 * 28 * 28, dtype=np.uint32).reshape(2, 28, 28).astype(np.uint8)
    parsed = parse_idx(idx_bytes(images))
    assert parsed.shape == (2, 28, 28) and parsed.dtype == np.uint8
    assert np.array_equal(parsed, images)
    assert np.array_equal(parse_idx(idx_bytes(np.array([3, 1, 4], dtype=np.uint8))), [3, 1, 4])


def test_parse_idx_bad_magic():
    data = bytearray(idx_bytes(np.zeros((2, 2), dtype=np.uint8)))
    data[2] = 0x0D  # float type code: not Fashion-MNIST
    with pytest.raises(IdxFormatError, match="bad magic"):
        parse_idx(bytes(data))


def test_parse_idx_truncated():
    with pytest.raises(IdxFormatError, match="promises"):
        parse_idx(idx_bytes(np.zeros((5, 28, 28), dtype=np.uint8))[:-10])
    with pytest.raises(IdxFormatError, match="too short"):
        parse_idx(b"\x00\x00")


def test_parse_fashion_mnist_count_mismatch():
    raw = {
        "train-images-idx3-ubyte": idx_bytes(np.zeros((3, 28, 28), dtype=np.uint8)),
        "train-labels-idx1-ubyte": idx_bytes(np.zeros(4, dtype=np.uint8)),
        "t10k-images-idx3-ubyte": idx_bytes(np.zeros((1, 28, 28), dtype=np.uint8)),
        "t10k-labels-idx1-ubyte": idx_bytes(np.zeros(1, dtype=np.uint8)),
    }
    with pytest.raises(IdxFormatError, match="train"):
        parse_fashion_mnist(raw, CLASSES)


def test_scaling_range_and_shape():
    images = torch.tensor([[[0, 255], [128, 64]]], dtype=torch.uint8)
    scaled = scale_images(images)
    assert scaled.shape == (1, 1, 2, 2) and scaled.dtype == torch.float32
    assert scaled.min() == -1.0 and scaled.max() == 1.0


def test_split_is_stratified_disjoint_and_complete():
    labels = torch.arange(1000) % 10
    split = stratified_split(labels, 0.2, seed=1)
    train, val = split["train_index"], split["validation_index"]
    assert len(set(train.tolist()) & set(val.tolist())) == 0
    assert len(train) + len(val) == 1000
    assert torch.equal(torch.bincount(labels[val]), torch.full((10,), 20))
    assert torch.equal(stratified_split(labels, 0.2, seed=1)["validation_index"], val)


def test_split_rejects_bad_fraction():
    with pytest.raises(ValueError, match="validation_fraction"):
        stratified_split(torch.arange(10), 1.5, seed=0)


def test_build_model_input_keeps_labels_aligned():
    images = torch.arange(10, dtype=torch.uint8).view(10, 1, 1).expand(10, 2, 2).contiguous()
    labels = torch.arange(10)
    parsed = {
        "train_images": images,
        "train_labels": labels,
        "test_images": images[:2],
        "test_labels": labels[:2],
    }
    out = build_model_input(
        parsed, {"train_index": torch.tensor([1, 3]), "validation_index": torch.tensor([0])}
    )
    assert out["train_labels"].tolist() == [1, 3]
    assert torch.allclose(out["train_images"][:, 0, 0, 0], scale_images(images[[1, 3]])[:, 0, 0, 0])
