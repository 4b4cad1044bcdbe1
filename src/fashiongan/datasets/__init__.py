"""Custom Kedro datasets: raw Fashion-MNIST with checksum verification, safetensors files."""

from fashiongan.datasets.fashion_mnist import FashionMNISTRawDataset
from fashiongan.datasets.safetensors import TensorDictDataset, TorchModelDataset

__all__ = ["FashionMNISTRawDataset", "TensorDictDataset", "TorchModelDataset"]
