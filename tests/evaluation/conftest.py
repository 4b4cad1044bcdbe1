"""Tiny data and untrained models for the evaluation library's tests (no Kedro project)."""

from __future__ import annotations

import pytest
import torch

from fashiongan.evaluation.sampling import catalog_captions, requested_attributes
from tests.evaluation.tiny import tiny_captions, tiny_model_input, tiny_modules


@pytest.fixture(scope="package")
def tiny():
    """``model_input``, ``attributes``, ``captions`` and ``modules`` (name → stem → module)."""
    model_input = tiny_model_input()
    attributes, captions = tiny_captions(model_input)
    return {
        "model_input": model_input,
        "attributes": attributes,
        "captions": captions,
        "modules": tiny_modules(),
    }


@pytest.fixture
def perfect_samples(tiny):
    """A "generator" that returns the real test images for the test captions."""
    model_input = tiny["model_input"]
    texts = catalog_captions(tiny["captions"])["caption"].tolist()
    return {
        "perfect": {
            "images": model_input["test_images"].clone(),
            "index": torch.arange(len(texts)),
            "labels": model_input["test_labels"].long(),
            **requested_attributes(texts),
        }
    }
