"""Custom Kedro datasets: raw Fashion-MNIST with checksum verification, safetensors files,
text encoders as Hugging Face folders."""

from fashiongan.datasets.fashion_mnist import FashionMNISTRawDataset
from fashiongan.datasets.safetensors import TensorDictDataset, TorchModelDataset
from fashiongan.datasets.text_encoder import TextEncoderDataset

__all__ = ["FashionMNISTRawDataset", "TensorDictDataset", "TextEncoderDataset", "TorchModelDataset"]
