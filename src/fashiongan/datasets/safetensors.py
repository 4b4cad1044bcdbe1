"""Kedro datasets that store tensors and torch modules as safetensors files.

safetensors holds tensors only, never code, so loading a file cannot execute anything; the module
class and its config travel as JSON in the file's metadata and the class must live in
``fashiongan.models``.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from pathlib import Path
from typing import Any

import torch
from kedro.io import DatasetError
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from fashiongan.datasets.atomic import atomic_path
from fashiongan.datasets.base import FileDataset

_ALLOWED_MODULE_PREFIX = "fashiongan.models."


def _read_metadata(path: Path) -> dict[str, str]:
    with safe_open(str(path), framework="pt") as handle:
        return handle.metadata() or {}


class TensorDictDataset(FileDataset[dict[str, torch.Tensor], dict[str, torch.Tensor]]):
    """A ``dict[str, Tensor]`` in one safetensors file (fast, memory-mapped loading).

    Example catalog entry::

        model_input:
          type: fashiongan.datasets.TensorDictDataset
          filepath: data/05_model_input/fashion_mnist.safetensors
    """

    def load(self) -> dict[str, torch.Tensor]:
        path = self.path
        if not path.is_file():
            raise DatasetError(f"{path} does not exist: run the pipeline that produces it first.")
        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as err:
            raise DatasetError(f"{path} is not a readable safetensors file: {err}") from err

    def save(self, data: dict[str, torch.Tensor]) -> None:
        tensors = {key: value.detach().cpu().contiguous() for key, value in data.items()}
        with atomic_path(self._filepath) as tmp:
            save_file(tensors, str(tmp))


class TorchModelDataset(FileDataset[torch.nn.Module, torch.nn.Module]):
    """A torch module: weights as safetensors, its class and config dataclass as metadata.

    The module must expose ``config`` (a dataclass) and be constructible as ``cls(config)``.
    Loading rebuilds the module on the CPU in eval mode.
    """

    def save(self, module: torch.nn.Module) -> None:
        save_module(module, self.path)

    def load(self) -> torch.nn.Module:
        return load_module(self.path)


def save_module(module: torch.nn.Module, path: Path) -> None:
    """Save ``module`` (weights + class + config) atomically to ``path``."""
    config = getattr(module, "config", None)
    if config is None or not dataclasses.is_dataclass(config):
        raise DatasetError(f"{type(module).__name__} has no dataclass `config`; cannot rebuild it.")
    cls = type(module)
    metadata = {
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "config": json.dumps(dataclasses.asdict(config)),
    }
    state = {key: value.detach().cpu().contiguous() for key, value in module.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=metadata)


def load_module(path: Path) -> torch.nn.Module:
    """Rebuild the module saved by :func:`save_module`."""
    if not path.is_file():
        raise DatasetError(f"No model at {path}: train it first (e.g. `make train`).")
    try:
        metadata = _read_metadata(path)
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise DatasetError(f"{path} is not a readable safetensors model: {err}") from err
    class_path = metadata.get("class", "")
    if not class_path.startswith(_ALLOWED_MODULE_PREFIX):
        raise DatasetError(f"{path}: model class {class_path!r} is not a fashiongan model.")
    module_name, _, class_name = class_path.rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name)
    config_cls = cls.config_class
    config = _beside(config_cls(**_tuples(json.loads(metadata["config"]))), path.parent)
    module = cls(config)
    module.load_state_dict(state)
    return module.eval()


def _beside(config: Any, folder: Path) -> Any:
    """Resolve config paths saved relative to the model file ("./text_encoder") against its folder.

    A model and what travels with it (the text encoder trained beside the GAN) then load
    together wherever the project is cloned or the ``models/`` folder is copied.
    """
    changes = {
        name: str(folder.resolve() / value[2:])
        for name in getattr(config, "paths_beside_model", ())
        if isinstance(value := getattr(config, name), str) and value.startswith("./")
    }
    return dataclasses.replace(config, **changes) if changes else config


def _tuples(values: dict[str, Any]) -> dict[str, Any]:
    """JSON turns tuples into lists; config dataclasses are frozen with tuple fields."""
    return {
        key: tuple(value) if isinstance(value, list) else value for key, value in values.items()
    }
