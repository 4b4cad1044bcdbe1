"""Device choice, seeding and guards shared by every training loop."""

from __future__ import annotations

import math
import os
import random

import numpy as np
import torch


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or inf; the run stops and the last good checkpoint is kept."""


def pick_device(preference: str = "auto") -> torch.device:
    """Return ``cuda`` if available, else ``mps``, else ``cpu`` (or the explicit preference)."""
    if preference != "auto":
        return torch.device(preference)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int, deterministic: bool = True) -> torch.Generator:
    """Seed Python, NumPy and torch; return a CPU generator for data order and noise."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
    return torch.Generator().manual_seed(seed)


def check_finite(step: int, **losses: float) -> None:
    """Raise :class:`NonFiniteLossError` naming the loss and the step when one is NaN/inf."""
    for name, value in losses.items():
        if not math.isfinite(value):
            raise NonFiniteLossError(
                f"{name} became {value} at step {step}; training stopped. The last good "
                "checkpoint is kept: lower the learning rate or change the loss, then resume."
            )
