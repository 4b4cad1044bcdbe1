"""FashionIQ's official files: where they are, how to read them, how to load the pictures.

The official layout (https://github.com/XiaoxiaoGuo/fashion-iq), under ``root``::

    captions/cap.{category}.{split}.json        [{"candidate": asin, "target": asin,
                                                  "captions": [str, str]}, ...]
    image_splits/split.{category}.{split}.json  [asin, ...]

and a folder of ``<asin>.jpg|jpeg|png`` pictures (flat, or one subfolder per category) that the
user gathers: many of the original Amazon URLs are dead, so some pictures are always missing.
The ``fashioniq_processing`` and ``fashioniq`` pipelines both raise these errors.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

from fashiongan.config import FashionIQData
from fashiongan.images import ImageInputError, load_image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
OFFICIAL_REPO = "https://github.com/XiaoxiaoGuo/fashion-iq"
PAIR_COLUMNS = ("category", "split", "position", "candidate", "target", "captions", "caption")


class FashionIQDataMissingError(FileNotFoundError):
    """FashionIQ files are not where the parameters say; the message says what and where."""


class FashionIQFormatError(ValueError):
    """A FashionIQ JSON file is not in the official format; the message names file and entry."""


def caption_file(data: FashionIQData, category: str, split: str) -> Path:
    return Path(data.root) / "captions" / f"cap.{category}.{split}.json"


def split_file(data: FashionIQData, category: str, split: str) -> Path:
    return Path(data.root) / "image_splits" / f"split.{category}.{split}.json"


def check_layout(data: FashionIQData) -> None:
    """Raise a one-line :class:`FashionIQDataMissingError` naming the first missing file.

    Checks the picture size first (a ``ValueError`` naming the parameter; ``dtype`` and
    ``channels`` are checked with the parameters).

    Args:
        data: the ``fashioniq.data`` parameters (``root``, ``images_dir``, ``categories``,
            ``splits``, ``gallery_splits``).
    """
    if data.image_size < 8:
        raise ValueError(f"fashioniq.data.image_size must be >= 8, got {data.image_size}")
    images_dir = Path(data.images_dir)
    hint = (
        f"download captions/ and image_splits/ from {OFFICIAL_REPO} into {data.root} and put "
        f"the pictures (<asin>.jpg or .png) in {images_dir} (README: FashionIQ)"
    )
    wanted = [caption_file(data, c, s) for c in data.categories for s in data.splits]
    wanted += [split_file(data, c, s) for c in data.categories for s in data.gallery_splits]
    missing = [path for path in wanted if not path.is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more FashionIQ files)" if len(missing) > 1 else ""
        raise FashionIQDataMissingError(f"{missing[0]} not found{more}: {hint}")
    if not images_dir.is_dir():
        raise FashionIQDataMissingError(f"{images_dir} not found: {hint}")


def join_captions(captions: list[str], joiner: str = " and ") -> str:
    """The two relative captions as one text ("is darker and has long sleeves").

    Surrounding spaces and punctuation go (annotators wrote " green", "is blue."); empty
    captions are skipped, so the result is empty only when every caption is.
    """
    parts = [c.strip().strip(".?!,;: ").strip() for c in captions if isinstance(c, str)]
    return joiner.join(p for p in parts if p)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise FashionIQFormatError(f"{path} is not valid JSON: {err}") from err


def read_caption_file(path: Path, category: str, split: str, joiner: str) -> list[dict[str, Any]]:
    entries = _read_json(path)
    if not isinstance(entries, list):
        raise FashionIQFormatError(f"{path}: expected a JSON list of pairs")
    rows = []
    for position, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("candidate"), str):
            raise FashionIQFormatError(
                f"{path}: entry {position} needs a 'candidate' ASIN string, got {entry!r:.80}"
            )
        captions = entry.get("captions") or []
        if not isinstance(captions, list):
            raise FashionIQFormatError(f"{path}: entry {position} 'captions' must be a list")
        target = entry.get("target")
        rows.append(
            {
                "category": category,
                "split": split,
                "position": position,
                "candidate": entry["candidate"],
                "target": target if isinstance(target, str) and target else None,
                "captions": [str(c) for c in captions],
                "caption": join_captions(captions, joiner),
            }
        )
    return rows


def read_split_file(path: Path, category: str, split: str) -> list[dict[str, Any]]:
    asins = _read_json(path)
    if not isinstance(asins, list) or not all(isinstance(a, str) for a in asins):
        raise FashionIQFormatError(f"{path}: expected a JSON list of ASIN strings")
    return [{"category": category, "split": split, "asin": a} for a in asins]


def index_image_files(images_dir: Path, categories: list[str]) -> dict[str, Path]:
    """``asin → file`` for ``<asin>.png|jpg|jpeg`` in the folder and its category subfolders.

    One directory listing instead of a ``stat`` per ASIN and suffix (FashionIQ has ~77k
    pictures). A flat file wins over a category subfolder's; ``.png`` over ``.jpg``.
    """
    found: dict[str, Path] = {}
    folders = [images_dir / c for c in reversed(categories)] + [images_dir]
    for folder in folders:  # later folders overwrite: the flat folder wins
        if not folder.is_dir():
            continue
        by_stem: dict[str, Path] = {}
        with os.scandir(folder) as entries:
            for entry in entries:
                stem, suffix = os.path.splitext(entry.name)
                rank = (
                    IMAGE_SUFFIXES.index(suffix.lower()) if suffix.lower() in IMAGE_SUFFIXES else -1
                )
                if rank < 0 or not entry.is_file():
                    continue
                known = by_stem.get(stem)
                if known is None or rank < IMAGE_SUFFIXES.index(known.suffix.lower()):
                    by_stem[stem] = Path(entry.path)
        found.update(by_stem)
    return found


def _load(path: Path | None, size: int, channels: int) -> torch.Tensor | str:
    """The picture as (C, S, S) in [-1, 1], or the reason it cannot be used."""
    if path is None:
        return "missing"
    try:
        return load_image(path, size, channels)[0]
    except ImageInputError as err:
        return f"unreadable: {err}"


def load_pictures(
    asins: list[str], files: dict[str, Path], data: FashionIQData
) -> tuple[list[str], torch.Tensor, dict[str, str]]:
    """Load the pictures of ``asins`` (threads: Pillow decodes without the GIL).

    Returns:
        The ASINs that loaded, their (N, C, S, S) tensor (``data.dtype``) and
        ``{asin: reason}`` for the others (``missing`` or ``unreadable: …``).
    """
    size, channels = data.image_size, data.channels
    dtype = getattr(torch, data.dtype)
    loaded, tensors, failed = [], [], {}
    with ThreadPoolExecutor(max_workers=data.workers) as pool:
        results = pool.map(lambda a: _load(files.get(a), size, channels), asins, chunksize=64)
        for asin, result in zip(asins, results, strict=True):
            if isinstance(result, str):
                failed[asin] = result
            else:
                loaded.append(asin)
                tensors.append(result.to(dtype))
    images = torch.stack(tensors) if tensors else torch.empty(0, channels, size, size, dtype=dtype)
    return loaded, images, failed
