"""The project's Kedro datasets, all here: raw Fashion-MNIST with checksum verification,
safetensors files (tensor dicts, torch modules), text encoders as Hugging Face folders, faiss
indexes, and partitioned folders that may be empty.

The file datasets share :class:`~fashiongan.datasets.base.FileDataset`; catalog entries name
them as ``fashiongan.datasets.<Class>``. faiss and kedro-datasets load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from fashiongan.datasets.base import FileDataset
from fashiongan.datasets.fashion_mnist import FashionMNISTRawDataset
from fashiongan.datasets.safetensors import TensorDictDataset, TorchModelDataset
from fashiongan.datasets.text_encoder import TextEncoderDataset

_LAZY = {
    "FaissIndexDataset": "fashiongan.datasets.faiss_index",
    "OptionalPartitionedDataset": "fashiongan.datasets.partitions",
}

__all__ = [
    "FaissIndexDataset",
    "FashionMNISTRawDataset",
    "FileDataset",
    "OptionalPartitionedDataset",
    "TensorDictDataset",
    "TextEncoderDataset",
    "TorchModelDataset",
]


def __getattr__(name: str) -> Any:
    """Import the faiss and partitioned datasets only when a catalog or caller names them."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
