"""Kedro datasets that store tensors and torch modules as safetensors files.

safetensors holds tensors only, never code, so loading a file cannot execute anything; the module
class and its config travel as JSON in the file's metadata and the class must live in
``fashiongan.models``.

Every file written here carries a SHA-256 of its tensors in the metadata (``tensors_sha256``),
verified on load: a file changed after it was written (a bit flip, a hand edit, a half-synced
copy) is named instead of trained on. Files written before the digest existed load unchecked.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from pathlib import Path
from typing import Any

import torch
from kedro.io import DatasetError
from pydantic import BaseModel
from safetensors import SafetensorError
from safetensors.torch import safe_open, save_file

from fashiongan.datasets.atomic import atomic_path
from fashiongan.datasets.base import FileDataset
from fashiongan.datasets.contracts import DEFAULT_REMEDY, ContractError, TensorContract

_ALLOWED_MODULE_PREFIX = "fashiongan.models."
#: The metadata key of the tensors' SHA-256 (see :func:`tensors_sha256`).
DIGEST_KEY = "tensors_sha256"


def tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and raw bytes, in name order.

    Computed from the tensors rather than the file so that save (before the file exists) and load
    agree whatever order safetensors lays the buffers out in.
    """
    digest = hashlib.sha256()
    for key in sorted(tensors):
        tensor = tensors[key].detach().cpu().contiguous()
        digest.update(json.dumps([key, str(tensor.dtype), list(tensor.shape)]).encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())  # the bytes, not a copy
    return digest.hexdigest()


def _read(
    path: Path, kind: str, shown: str | Path | None = None
) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """The metadata and tensors of ``path``; an unreadable file is one DatasetError naming
    ``shown`` (the path as the user knows it)."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            return handle.metadata() or {}, {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as err:
        raise DatasetError(f"{shown or path} is not a readable safetensors {kind}: {err}") from err


def _verify_digest(
    path: str | Path, metadata: dict[str, str], tensors: dict[str, torch.Tensor], remedy: str
) -> None:
    """Refuse a file whose tensors no longer match the digest written with them."""
    written = metadata.get(DIGEST_KEY)
    if written is not None and written != tensors_sha256(tensors):
        raise DatasetError(f"{path} changed since it was written (SHA-256 mismatch): {remedy}")


class TensorDictDataset(FileDataset[dict[str, torch.Tensor], dict[str, torch.Tensor]]):
    """A ``dict[str, Tensor]`` in one safetensors file, with its digest and optional contract.

    Example catalog entry (the contract is checked on every load and save; see
    :mod:`fashiongan.datasets.contracts`)::

        model_input:
          type: fashiongan.datasets.TensorDictDataset
          filepath: data/05_model_input/fashion_mnist.safetensors
          contract:
            remedy: rerun `make data`
            tensors:
              train_images: {dtype: float32, shape: [n_train, 1, 28, 28], range: [-1, 1]}
    """

    def __init__(
        self,
        filepath: str,
        contract: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(filepath=filepath, metadata=metadata)
        try:
            self._contract = None if contract is None else TensorContract.from_config(contract)
        except ContractError as err:
            raise DatasetError(f"{filepath}: bad contract in the catalog: {err}") from err

    @property
    def remedy(self) -> str:
        """What the user should do about a bad file (the contract's remedy, else a generic one)."""
        return DEFAULT_REMEDY if self._contract is None else self._contract.remedy

    def load(self) -> dict[str, torch.Tensor]:
        path, shown = self.path, self.shown_path
        if not path.is_file():
            raise DatasetError(f"{shown} does not exist: run the pipeline that produces it first.")
        metadata, tensors = _read(path, "file", shown)
        _verify_digest(shown, metadata, tensors, self.remedy)
        if self._contract is not None and (found := self._contract.problem(tensors)):
            raise DatasetError(f"{shown}: {found}: {self.remedy}")
        return tensors

    def save(self, data: dict[str, torch.Tensor]) -> None:
        tensors = {key: value.detach().cpu().contiguous() for key, value in data.items()}
        if self._contract is not None and (found := self._contract.problem(tensors)):
            raise DatasetError(f"{self.shown_path} not written: {found}")
        with atomic_path(self._filepath) as tmp:
            save_file(tensors, str(tmp), metadata={DIGEST_KEY: tensors_sha256(tensors)})

    def _describe(self) -> dict[str, Any]:
        return {**super()._describe(), "contract": self._contract is not None}


class TorchModelDataset(FileDataset[torch.nn.Module, torch.nn.Module]):
    """A torch module: weights as safetensors, its class and config as metadata.

    The module must expose ``config`` (a pydantic model: its parameter block plus what the data
    fixes) and be constructible as ``cls(config)``.
    Loading rebuilds the module on the CPU in eval mode.
    """

    def save(self, module: torch.nn.Module) -> None:
        save_module(module, self.path)

    def load(self) -> torch.nn.Module:
        return load_module(self.path)


def save_module(module: torch.nn.Module, path: Path) -> None:
    """Save ``module`` (weights + class + config) atomically to ``path``."""
    config = getattr(module, "config", None)
    if not isinstance(config, BaseModel):
        raise DatasetError(f"{type(module).__name__} has no typed `config`; cannot rebuild it.")
    cls = type(module)
    state = {key: value.detach().cpu().contiguous() for key, value in module.state_dict().items()}
    metadata = {
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "config": json.dumps(config.model_dump(mode="json")),
        DIGEST_KEY: tensors_sha256(state),
    }
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=metadata)


def load_module(path: Path) -> torch.nn.Module:
    """Rebuild the module saved by :func:`save_module`."""
    if not path.is_file():
        raise DatasetError(f"No model at {path}: train it first (e.g. `make train`).")
    metadata, state = _read(path, "model")
    _verify_digest(path, metadata, state, "train it again (e.g. `make train`)")
    class_path = metadata.get("class", "")
    if not class_path.startswith(_ALLOWED_MODULE_PREFIX):
        raise DatasetError(f"{path}: model class {class_path!r} is not a fashiongan model.")
    module_name, _, class_name = class_path.rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name)
    config_cls = cls.config_class
    build = getattr(config_cls, "from_saved", None) or config_cls.model_validate
    try:
        config = _beside(build(json.loads(metadata["config"])), path.parent)
    except (TypeError, ValueError) as err:  # a config this code cannot build
        raise DatasetError(f"{path}: {err}") from err
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
    return config.model_copy(update=changes) if changes else config
