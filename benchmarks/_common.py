"""Shared helpers for benchmark scripts: timing medians and writing results as JSON."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from fashiongan.config import Block, load_block

RESULTS = Path(__file__).resolve().parent / "results"
#: What G's config names as the encoder behind the benchmarks' features (the bundled MiniLM's,
#: or random ones standing in for them): the trainer's ``model_extra``.
BUNDLED_FEATURES = {"text_encoder": "bundled", "text_pooling": "mean"}


def parameters(block: str, conf: Path = Path("conf/base")) -> Block:
    """The typed parameter ``block`` as conf/base sets it; only that block is checked."""
    return load_block(block, conf.parent, conf.name)


def time_median(fn: Callable[[], object], repeats: int, warmup: int = 1) -> dict[str, float]:
    """Median, min and max wall time of ``fn`` in seconds over ``repeats`` runs after warm-up."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
        "repeats": repeats,
    }


def machine() -> dict[str, object]:
    """What the numbers were measured on."""
    return {
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def save(name: str, payload: dict) -> Path:
    """Write ``results/<name>.json`` and print it."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"benchmark": name, "machine": machine(), **payload}
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(json.dumps(payload, indent=2))
    return path
