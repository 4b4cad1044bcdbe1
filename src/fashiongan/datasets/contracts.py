"""Data contracts: what a consumer of a tensor file relies on, written down in the catalog.

A pipeline boundary (the model input every trainer reads) is where a wrong file does the most
harm: values of 3.0 or NaN train without a word and replace the published model. A contract
names the keys, dtypes, shapes and value ranges the consumers expect; the dataset checks it on
every load (and save), so a bad file stops the run before anything downstream is written.

Catalog form (an argument of :class:`~fashiongan.datasets.TensorDictDataset`)::

    contract:
      remedy: rerun `make data`          # what the one-line error tells the user to do
      tensors:
        train_images: {dtype: float32, shape: [n_train, 1, 28, 28], range: [-1, 1]}
        train_labels: {dtype: int64, shape: [n_train], range: [0, 9]}

A shape entry is a size, ``-1`` (any size) or a name: every dimension with the same name must
have the same size across the file's tensors (images and their labels agree). ``range`` bounds
every value (inclusive); float tensors with a range must also be finite. Keys the contract does
not name are allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

_SPEC_FIELDS = {"dtype", "shape", "range"}


class ContractError(ValueError):
    """The data breaks its contract (or the contract itself is malformed); the message says how."""


def _number(value: float) -> str:
    """1.0 → "1", 3.5 → "3.5": bounds read as they were written in the catalog."""
    return str(int(value)) if float(value).is_integer() else f"{value:.6g}"


@dataclass(frozen=True)
class TensorSpec:
    """What one tensor must look like; ``None`` fields are not checked."""

    dtype: torch.dtype | None = None
    shape: tuple[int | str, ...] | None = None
    range: tuple[float, float] | None = None

    @classmethod
    def from_config(cls, key: str, config: Mapping[str, Any]) -> TensorSpec:
        """Build from the catalog's mapping; a typo in the catalog is named, not ignored."""
        unknown = set(config) - _SPEC_FIELDS
        if unknown:
            raise ContractError(f"contract for {key}: unknown field(s) {sorted(unknown)}")
        dtype = config.get("dtype")
        torch_dtype = getattr(torch, dtype, None) if dtype is not None else None
        if dtype is not None and not isinstance(torch_dtype, torch.dtype):
            raise ContractError(f"contract for {key}: unknown dtype {dtype!r}")
        shape = config.get("shape")
        if shape is not None and not all(isinstance(d, int | str) for d in shape):
            raise ContractError(f"contract for {key}: shape entries are sizes, -1 or names")
        bounds = config.get("range")
        if bounds is not None and (len(bounds) != 2 or float(bounds[0]) > float(bounds[1])):
            raise ContractError(f"contract for {key}: range must be [low, high], got {bounds}")
        return cls(
            dtype=torch_dtype,
            shape=None if shape is None else tuple(shape),
            range=None if bounds is None else (float(bounds[0]), float(bounds[1])),
        )

    def dtype_problem(self, key: str, tensor: torch.Tensor) -> str | None:
        if self.dtype is not None and tensor.dtype != self.dtype:
            return f"{key} is {_dtype_name(tensor.dtype)}, expected {_dtype_name(self.dtype)}"
        return None

    def value_problem(self, key: str, tensor: torch.Tensor) -> str | None:
        """Non-finite values first (NaN would slip through a range check), then the range."""
        if self.range is None or tensor.numel() == 0:
            return None
        if tensor.is_floating_point():
            bad = int((~torch.isfinite(tensor)).sum())
            if bad:
                nans = int(torch.isnan(tensor).sum())
                return f"{key} has {bad} non-finite values ({nans} NaN, {bad - nans} inf)"
        low, high = self.range
        smallest, largest = (float(v) for v in torch.aminmax(tensor))
        found = [f"min {_number(smallest)}"] if smallest < low else []
        found += [f"max {_number(largest)}"] if largest > high else []
        if found:
            return (
                f"{key} has values outside [{_number(low)}, {_number(high)}] ({', '.join(found)})"
            )
        return None


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


#: What to do about a bad or changed file when its catalog entry says nothing more specific.
DEFAULT_REMEDY = "rerun the pipeline that makes it"


@dataclass(frozen=True)
class TensorContract:
    """The tensors a file must hold, and what to tell the user when it does not."""

    tensors: Mapping[str, TensorSpec]
    remedy: str = DEFAULT_REMEDY

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TensorContract:
        """Build from the catalog's ``contract:`` mapping (``tensors`` and optional ``remedy``)."""
        unknown = set(config) - {"tensors", "remedy"}
        if unknown or not isinstance(config.get("tensors"), Mapping):
            raise ContractError(
                "a contract is {tensors: {key: {dtype, shape, range}}, remedy: text}"
                + (f"; unknown field(s) {sorted(unknown)}" if unknown else "")
            )
        specs = {key: TensorSpec.from_config(key, spec) for key, spec in config["tensors"].items()}
        remedy = config.get("remedy")
        return cls(specs) if remedy is None else cls(specs, str(remedy))

    def problem(self, data: Mapping[str, torch.Tensor]) -> str | None:
        """The first way ``data`` breaks the contract, as a phrase; ``None`` when it holds.

        Cheap checks (keys, dtypes, shapes) run over every tensor before the value scans.
        """
        missing = [key for key in self.tensors if key not in data]
        if missing:
            return f"missing {', '.join(missing)} (it has {', '.join(sorted(data)) or 'nothing'})"
        sizes: dict[str, tuple[int, str]] = {}  # named dimension → (size, tensor it came from)
        for key, spec in self.tensors.items():
            found = spec.dtype_problem(key, data[key]) or _shape_problem(
                key, spec, data[key], sizes
            )
            if found:
                return found
        for key, spec in self.tensors.items():
            found = spec.value_problem(key, data[key])
            if found:
                return found
        return None


def _shape_problem(
    key: str, spec: TensorSpec, tensor: torch.Tensor, sizes: dict[str, tuple[int, str]]
) -> str | None:
    """Check sizes and ``-1``; bind each named dimension on first sight, compare it afterwards."""
    if spec.shape is None:
        return None
    shape = tuple(tensor.shape)
    expected = "(" + ", ".join(str(d) for d in spec.shape) + ")"
    if len(shape) != len(spec.shape):
        return f"{key} has shape {shape}, expected {expected}"
    for size, want in zip(shape, spec.shape, strict=True):
        if isinstance(want, str):
            bound, source = sizes.setdefault(want, (size, key))
            if size != bound:
                return f"{key} has shape {shape} but {source} has {want} = {bound}"
        elif want != -1 and size != want:
            return f"{key} has shape {shape}, expected {expected}"
    return None
