"""Atomic, resumable training checkpoints in safetensors.

A checkpoint holds everything an uninterrupted run would still have in memory: module weights,
optimizer state, every RNG state, the step and the metric history. Tensors go in the safetensors
body, everything else in its JSON metadata, so loading never unpickles anything.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from pydantic import BaseModel
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from fashiongan.config import Block, fingerprinted, overridden
from fashiongan.datasets.atomic import atomic_path

logger = logging.getLogger(__name__)
_PATTERN = "ckpt-*.safetensors"
TrainingBlock = TypeVar("TrainingBlock", bound=Block)


def for_variant(training: TrainingBlock, run_name: str) -> TrainingBlock:
    """``training`` with its checkpoints in ``<checkpoint_dir>/<run_name>/``, so that a run
    resumes only a checkpoint of its own variant: ``make smoke``'s, of the same parameters but
    fewer steps, never seeds the default run. ``checkpoint_dir`` None (no checkpoints) stays."""
    if training.checkpoint_dir is None:
        return training
    folder = Path(training.checkpoint_dir) / run_name
    return overridden(training, checkpoint_dir=str(folder))


def params_fingerprint(params: BaseModel, **extra: Any) -> str:
    """Hash of what shapes a run: the block's fields less those marked run control (how long it
    runs, how it logs: :data:`fashiongan.config.RUN_CONTROL`, so more epochs continue a run),
    and ``extra`` facts such as the data's size (an ``extra`` key replaces the block's).

    The hash is of the block's JSON form, the same as its YAML dict's, so checkpoints written
    before parameters were typed still resume.
    """
    shaping = fingerprinted(params) | extra
    return hashlib.sha256(json.dumps(shaping, sort_keys=True, default=str).encode()).hexdigest()[
        :16
    ]


class CheckpointError(RuntimeError):
    """No usable checkpoint, or one that belongs to a different configuration."""


@dataclass
class TrainingState:
    """What a training loop needs to continue exactly where it stopped."""

    modules: dict[str, torch.nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    rng: torch.Generator
    step: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    window: dict[str, list[float]] = field(default_factory=dict)  # metrics not yet averaged/logged


def _flatten_optimizer(
    name: str, optimizer: torch.optim.Optimizer, tensors: dict, meta: dict
) -> None:
    state_dict = optimizer.state_dict()
    plain_state: dict[str, dict[str, Any]] = {}
    for param_id, values in state_dict["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{name}.{param_id}.{key}"] = value.detach().cpu().contiguous()
            else:
                plain_state.setdefault(str(param_id), {})[key] = value
    meta[f"optim.{name}"] = {"param_groups": state_dict["param_groups"], "plain": plain_state}


def _restore_optimizer(
    name: str, optimizer: torch.optim.Optimizer, tensors: dict, meta: dict
) -> None:
    saved = meta[f"optim.{name}"]
    state: dict[int, dict[str, Any]] = {}
    prefix = f"optim.{name}."
    for key, value in tensors.items():
        if key.startswith(prefix):
            param_id, _, slot = key[len(prefix) :].partition(".")
            state.setdefault(int(param_id), {})[slot] = value
    for param_id, values in saved["plain"].items():
        state.setdefault(int(param_id), {}).update(values)
    optimizer.load_state_dict({"state": state, "param_groups": saved["param_groups"]})


def save_checkpoint(directory: Path, state: TrainingState, fingerprint: str, keep: int = 2) -> Path:
    """Write ``ckpt-<step>.safetensors`` atomically and prune all but the newest ``keep``.

    Raises:
        OSError: naming the checkpoint when it cannot be written (full disk, read-only); the
            previous checkpoints are untouched, since pruning happens only after a good write.
    """
    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, Any] = {
        "step": state.step,
        "history": state.history,
        "window": state.window,
        "fingerprint": fingerprint,
    }
    for name, module in state.modules.items():
        for key, value in module.state_dict().items():
            tensors[f"module.{name}.{key}"] = value.detach().cpu().contiguous()
    for name, optimizer in state.optimizers.items():
        _flatten_optimizer(name, optimizer, tensors, meta)
    tensors["rng.torch"] = torch.get_rng_state()
    tensors["rng.data"] = state.rng.get_state()
    if torch.cuda.is_available():
        for index, cuda_state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{index}"] = cuda_state
    np_state = np.random.get_state()
    meta["rng.python"] = random.getstate()
    meta["rng.numpy"] = [np_state[0], np_state[1].tolist(), *np_state[2:]]

    path = Path(directory) / f"ckpt-{state.step:09d}.safetensors"
    try:
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata={"state": json.dumps(meta)})
    except SafetensorError as err:  # safetensors reports a full disk as its own error type
        code = re.search(r"os error (\d+)", str(err))
        raise OSError(
            int(code.group(1)) if code else errno.EIO, f"could not write {path}: {err}"
        ) from err
    for old in sorted(Path(directory).glob(_PATTERN))[:-keep]:
        old.unlink(missing_ok=True)
    return path


def load_checkpoint(path: Path, state: TrainingState, fingerprint: str) -> None:
    """Load one checkpoint file into ``state`` (weights, optimizers, RNGs, step, metrics).

    Raises:
        CheckpointError: if it was written for other parameters (another fingerprint).
        SafetensorError, OSError, ValueError, KeyError: if the file is unreadable or incomplete.
    """
    with safe_open(str(path), framework="pt") as handle:
        meta = json.loads((handle.metadata() or {})["state"])
    if meta["fingerprint"] != fingerprint:
        raise CheckpointError(
            f"{path} was written with different parameters; delete {path.parent} or set "
            "`resume: false` to start over."
        )
    tensors = load_file(str(path))
    for name, module in state.modules.items():
        prefix = f"module.{name}."
        module.load_state_dict(
            {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        )
    for name, optimizer in state.optimizers.items():
        _restore_optimizer(name, optimizer, tensors, meta)
    torch.set_rng_state(tensors["rng.torch"])
    state.rng.set_state(tensors["rng.data"])
    cuda_states = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states)
    python_state = meta["rng.python"]
    random.setstate((python_state[0], tuple(python_state[1]), python_state[2]))
    np_state = meta["rng.numpy"]
    np.random.set_state((np_state[0], np.array(np_state[1], dtype=np.uint32), *np_state[2:]))
    state.step = int(meta["step"])
    state.history = list(meta["history"])
    state.window.clear()
    state.window.update(meta["window"])


def load_latest(directory: Path, state: TrainingState, fingerprint: str) -> Path | None:
    """Load the newest readable checkpoint into ``state``; fall back past corrupt ones.

    Returns:
        The checkpoint loaded, or None if the directory holds none.

    Raises:
        CheckpointError: if checkpoints exist but none is readable, or they belong to other params.
    """
    candidates = sorted(Path(directory).glob(_PATTERN), reverse=True)
    for path in candidates:
        try:
            load_checkpoint(path, state, fingerprint)
        except (SafetensorError, OSError, ValueError, KeyError, json.JSONDecodeError) as err:
            logger.error("Checkpoint %s is unreadable (%s); trying the previous one.", path, err)
            continue
        logger.info("Resumed from %s (step %d).", path, state.step)
        return path
    if candidates:
        raise CheckpointError(
            f"No readable checkpoint in {directory}: {[c.name for c in candidates]}"
        )
    return None
