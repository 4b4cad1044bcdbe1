"""Kedro dataset of a faiss index: one file in faiss' own binary format (no pickle)."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
from kedro.io import DatasetError

from fashiongan.datasets.atomic import atomic_path
from fashiongan.datasets.base import FileDataset


class FaissIndexDataset(FileDataset[faiss.Index, faiss.Index]):
    """A faiss index in one file, written atomically.

    Example catalog entry::

        search_faiss_index:
          type: fashiongan.datasets.FaissIndexDataset
          filepath: data/07_model_output/search/index.faiss
    """

    def load(self) -> faiss.Index:
        return read_index(self.path)

    def save(self, data: faiss.Index) -> None:
        write_index(data, self.path)


def write_index(index: faiss.Index, path: Path) -> None:
    """Save ``index`` atomically."""
    data = faiss.serialize_index(index)
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data.tobytes())


def read_index(path: Path) -> faiss.Index:
    """Load an index written by :func:`write_index`, with a clear error when it is missing."""
    if not path.is_file():
        raise DatasetError(
            f"No search index at {path}: build it first (kedro run --pipelines=search_index)."
        )
    try:
        return faiss.deserialize_index(np.frombuffer(path.read_bytes(), dtype=np.uint8))
    except RuntimeError as err:
        raise DatasetError(f"{path} is not a readable faiss index: {err}") from err
