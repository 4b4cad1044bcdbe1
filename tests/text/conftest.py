"""Fixtures of the text tests: drawn items and one shared text encoder (loaded once)."""

from __future__ import annotations

import numpy as np
import pytest
import torch


def draw_box(
    height: int = 20,
    width: int = 12,
    tone: int = 200,
    stripes: bool = False,
    size: int = 28,
    stripe_factor: float = 1 / 3,
) -> np.ndarray:
    """A centred uint8 box on a black background; ``stripes`` darkens every third row."""
    image = np.zeros((size, size), dtype=np.uint8)
    top, left = (size - height) // 2, (size - width) // 2
    image[top : top + height, left : left + width] = tone
    if stripes:
        image[top : top + height : 3, left : left + width] = round(tone * stripe_factor)
    return image


def as_model_input(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W) → float32 (N, 1, H, W) in [-1, 1], like data_processing."""
    return torch.from_numpy(images).float().div(127.5).sub(1.0).unsqueeze(1)


def random_items(n: int, seed: int, n_classes: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """Boxes of random height, width, tone and stripe contrast; labels cycle through classes."""
    rng = np.random.default_rng(seed)
    images = np.stack(
        [
            draw_box(
                height=int(rng.integers(12, 27)),
                width=int(rng.integers(4, 27)),
                tone=int(rng.integers(60, 256)),
                stripes=True,
                stripe_factor=float(rng.uniform(0.3, 1.0)),  # from strong stripes to none
            )
            for _ in range(n)
        ]
    )
    labels = torch.arange(n) % n_classes
    return as_model_input(images), labels


@pytest.fixture(scope="session")
def text_encoder():
    """The bundled all-MiniLM-L6-v2, loaded offline once for all text tests."""
    from fashiongan.text.encoder import TextEncoder
    from tests.model_configs import text_encoder_params

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("TRANSFORMERS_OFFLINE", "1")
        return TextEncoder.from_params(text_encoder_params(), device="cpu")


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Run each text test with one intra-op torch thread, restored afterwards.

    On the shared 2-core machine two threads spin against the other jobs: a tiny BERT batch
    took 0.7 s instead of 0.02 s.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
