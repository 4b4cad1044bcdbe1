"""The searchable items: their table, their pictures and the attributes measured on them."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image

from fashiongan.attributes import assign
from fashiongan.images import ImageInputError, open_image, to_picture
from fashiongan.pixels import from_uint8

log = logging.getLogger(__name__)

#: The measured attributes, in the column order of :attr:`Catalog.attributes`.
ATTRIBUTE_SLOTS = ("tone", "fit", "pattern")
REQUIRED_COLUMNS = frozenset({"id", "title", "category", "label"})


@dataclass(frozen=True)
class Catalog:
    """The searchable items: one table row per index row, and their pictures.

    Attributes:
        table: columns ``id``, ``title``, ``category``, ``label`` (-1 = unknown) and ``image``
            (path of the original picture, "" for Fashion-MNIST); a 0..N-1 index.
        thumbnails: (N, C, H, W) uint8 pictures at model resolution, or None.
        attributes: (N, 3) tone, fit and pattern measured on the thumbnails (-1 = unknown), or
            None without attribute cut points.
    """

    table: pd.DataFrame
    thumbnails: torch.Tensor | None = None
    attributes: torch.Tensor | None = None

    def __post_init__(self) -> None:
        missing = REQUIRED_COLUMNS - set(self.table.columns)
        if missing:
            raise ValueError(f"catalog table lacks columns {sorted(missing)}")
        if not self.table.index.equals(pd.RangeIndex(len(self.table))):
            raise ValueError("the catalog table must have a 0..N-1 index (reset_index first)")
        for name, values in (("thumbnails", self.thumbnails), ("attributes", self.attributes)):
            if values is not None and len(values) != len(self.table):
                raise ValueError(f"{len(self.table)} catalog rows but {len(values)} {name}")

    @classmethod
    def measured(
        cls,
        table: pd.DataFrame,
        thumbnails: torch.Tensor | None,
        thresholds: dict[str, torch.Tensor] | None,
    ) -> Catalog:
        """The catalog with every item's tone, fit and pattern measured (items of unknown class,
        or no thumbnails or cut points: -1)."""
        table = table.reset_index(drop=True)
        if thumbnails is None or thresholds is None:
            return cls(table, thumbnails)
        labels = torch.tensor(table["label"].to_numpy(dtype=np.int64))
        known = labels >= 0
        attributes = torch.full((len(table), len(ATTRIBUTE_SLOTS)), -1, dtype=torch.int64)
        if bool(known.any()):
            gray = from_uint8(thumbnails[known]).mean(1, keepdim=True)
            values = assign(gray, labels[known], thresholds)
            attributes[known] = torch.stack([values[s] for s in ATTRIBUTE_SLOTS], dim=1)
        return cls(table, thumbnails, attributes)

    def __len__(self) -> int:
        return len(self.table)

    @property
    def labels(self) -> torch.Tensor:
        """(N,) class labels, -1 = unknown."""
        return torch.tensor(self.table["label"].to_numpy(dtype=np.int64))

    def row_of(self, item: str | int) -> int | None:
        """The row of an item id (or of a row number), None if there is no such item."""
        rows = self.table.index[self.table["id"].astype(str) == str(item)].tolist()
        if rows:
            return int(rows[0])
        if isinstance(item, int | np.integer) and 0 <= int(item) < len(self.table):
            return int(item)
        return None

    def hits(self, scores: list[float], rows: list[int]) -> list[dict[str, Any]]:
        """The result rows the CLI prints and the app shows (faiss's -1 padding left out)."""
        table = self.table
        found = [(score, row) for score, row in zip(scores, rows, strict=True) if row >= 0]
        return [
            {
                "rank": rank,
                "row": int(row),
                "id": str(table.at[row, "id"]),
                "title": str(table.at[row, "title"]),
                "category": str(table.at[row, "category"]),
                "label": int(table.at[row, "label"]),
                "score": round(float(score), 4),
            }
            for rank, (score, row) in enumerate(found, start=1)
        ]

    def image(self, row: int, scale: int = 4) -> Image.Image | None:
        """The item's picture: the original file when there is one, else the thumbnail ×scale."""
        path = str(self.table.at[row, "image"]) if "image" in self.table.columns else ""
        if path and Path(path).is_file():
            try:
                return open_image(path).convert("RGB")
            except ImageInputError:
                log.warning("catalog image %s is unreadable; showing the thumbnail", path)
        if self.thumbnails is None:
            return None
        return to_picture(self.thumbnails[row].permute(1, 2, 0).numpy(), scale)  # (H, W, C)
