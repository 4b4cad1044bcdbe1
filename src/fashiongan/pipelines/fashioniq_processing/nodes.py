"""Nodes of ``fashioniq_processing``: the official FashionIQ files → image tensors and pair tables.

The official layout (https://github.com/XiaoxiaoGuo/fashion-iq), under ``root``::

    captions/cap.{category}.{split}.json        [{"candidate": asin, "target": asin,
                                                  "captions": [str, str]}, ...]
    image_splits/split.{category}.{split}.json  [asin, ...]

and a folder of ``<asin>.jpg|jpeg|png`` pictures (flat, or one subfolder per category) that the
user gathers: many of the original Amazon URLs are dead, so some pictures are always missing.
Missing and unreadable pictures are counted, never fatal; a pair without both pictures is
dropped with a count. The official test captions have no ``target`` (the challenge server kept
them): such pairs are counted as ``no_target`` and left out.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from fashiongan.images import ImageInputError, load_image

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
DTYPES = ("float32", "float16", "bfloat16")
#: Why a pair was left out; ``kept`` + these = ``total`` in the ingestion report.
PAIR_OUTCOMES = ("kept", "missing_image", "unreadable_image", "no_target", "no_caption")
OFFICIAL_REPO = "https://github.com/XiaoxiaoGuo/fashion-iq"
_PAIR_COLUMNS = ("category", "split", "position", "candidate", "target", "captions", "caption")


class FashionIQDataMissingError(FileNotFoundError):
    """FashionIQ files are not where the parameters say; the message says what and where."""


class FashionIQFormatError(ValueError):
    """A FashionIQ JSON file is not in the official format; the message names file and entry."""


def caption_file(data: dict[str, Any], category: str, split: str) -> Path:
    return Path(data["root"]) / "captions" / f"cap.{category}.{split}.json"


def split_file(data: dict[str, Any], category: str, split: str) -> Path:
    return Path(data["root"]) / "image_splits" / f"split.{category}.{split}.json"


def check_layout(data: dict[str, Any]) -> None:
    """Raise a one-line :class:`FashionIQDataMissingError` naming the first missing file.

    Checks the picture settings first (a ``ValueError`` naming the parameter).

    Args:
        data: the ``fashioniq.data`` parameters (``root``, ``images_dir``, ``categories``,
            ``splits``, ``gallery_splits``).
    """
    if data.get("dtype", "float32") not in DTYPES:
        raise ValueError(f"fashioniq.data.dtype is {data['dtype']!r}; choose one of {DTYPES}")
    if int(data["channels"]) not in (1, 3) or int(data["image_size"]) < 8:
        raise ValueError(
            "fashioniq.data needs channels 1 or 3 and image_size >= 8, got "
            f"{data['channels']} and {data['image_size']}"
        )
    images_dir = Path(data["images_dir"])
    hint = (
        f"download captions/ and image_splits/ from {OFFICIAL_REPO} into {data['root']} and put "
        f"the pictures (<asin>.jpg or .png) in {images_dir} (README: FashionIQ)"
    )
    wanted = [caption_file(data, c, s) for c in data["categories"] for s in data["splits"]]
    wanted += [split_file(data, c, s) for c in data["categories"] for s in data["gallery_splits"]]
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


def _read_captions(path: Path, category: str, split: str, joiner: str) -> list[dict[str, Any]]:
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


def _read_split(path: Path, category: str, split: str) -> list[dict[str, Any]]:
    asins = _read_json(path)
    if not isinstance(asins, list) or not all(isinstance(a, str) for a in asins):
        raise FashionIQFormatError(f"{path}: expected a JSON list of ASIN strings")
    return [{"category": category, "split": split, "asin": a} for a in asins]


def read_annotations(data: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read every caption file and the gallery splits in the official format.

    Args:
        data: the ``fashioniq.data`` parameters.

    Returns:
        The pair table (``category, split, position, candidate, target, captions, caption``;
        ``target`` is None where the file has none) and the listed gallery
        (``category, split, asin``) of each ``gallery_splits`` split.

    Raises:
        FashionIQDataMissingError: a file or the images folder is missing (one line).
        FashionIQFormatError: a file is not in the official format.
    """
    check_layout(data)
    joiner = data.get("caption_joiner", " and ")
    pairs = [
        row
        for category in data["categories"]
        for split in data["splits"]
        for row in _read_captions(caption_file(data, category, split), category, split, joiner)
    ]
    gallery = [
        row
        for category in data["categories"]
        for split in data["gallery_splits"]
        for row in _read_split(split_file(data, category, split), category, split)
    ]
    return (
        pd.DataFrame(pairs, columns=list(_PAIR_COLUMNS)),
        pd.DataFrame(gallery, columns=["category", "split", "asin"]),
    )


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
    asins: list[str], files: dict[str, Path], data: dict[str, Any]
) -> tuple[list[str], torch.Tensor, dict[str, str]]:
    """Load the pictures of ``asins`` (threads: Pillow decodes without the GIL).

    Returns:
        The ASINs that loaded, their (N, C, S, S) tensor (``data.dtype``) and
        ``{asin: reason}`` for the others (``missing`` or ``unreadable: …``).
    """
    size, channels = int(data["image_size"]), int(data["channels"])
    dtype = getattr(torch, data.get("dtype", "float32"))
    loaded, tensors, failed = [], [], {}
    with ThreadPoolExecutor(max_workers=max(1, int(data.get("workers", 4)))) as pool:
        results = pool.map(lambda a: _load(files.get(a), size, channels), asins, chunksize=64)
        for asin, result in zip(asins, results, strict=True):
            if isinstance(result, str):
                failed[asin] = result
            else:
                loaded.append(asin)
                tensors.append(result.to(dtype))
    images = torch.stack(tensors) if tensors else torch.empty(0, channels, size, size, dtype=dtype)
    return loaded, images, failed


def _pair_outcome(row: pd.Series, failed: dict[str, str]) -> str:
    if not isinstance(row["target"], str):
        return "no_target"
    if not row["caption"]:
        return "no_caption"
    reasons = [failed.get(row["candidate"]), failed.get(row["target"])]
    if "missing" in reasons:
        return "missing_image"
    if any(reasons):
        return "unreadable_image"
    return "kept"


def _counts(outcomes: pd.Series) -> dict[str, int]:
    counts = Counter(outcomes)
    return {"total": int(len(outcomes)), **{k: int(counts.get(k, 0)) for k in PAIR_OUTCOMES}}


def ingest_images(
    annotations: pd.DataFrame, listed_gallery: pd.DataFrame, data: dict[str, Any]
) -> tuple[dict[str, torch.Tensor], pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Load the pictures the pairs and galleries need; drop pairs without both, with counts.

    Args:
        annotations: the pair table from :func:`read_annotations`.
        listed_gallery: the gallery ASINs listed by ``image_splits``.
        data: the ``fashioniq.data`` parameters (``images_dir``, ``image_size``, ``channels``,
            ``dtype``, ``workers``, ``categories``).

    Returns:
        ``{"images": (N, C, S, S)}`` in [-1, 1]; the item table (``row, asin``; row = index
        into ``images``); the kept pairs with ``candidate_row``, ``target_row`` and
        ``category_id``; the kept gallery (``category, split, asin, row``); the ingestion
        report (counts of pictures and pairs, overall and per category/split).

    Raises:
        FashionIQDataMissingError: not a single picture could be loaded.
    """
    images_dir = Path(data["images_dir"])
    usable = annotations["target"].notna() & (annotations["caption"] != "")
    needed = set(annotations.loc[usable, "candidate"]) | set(annotations.loc[usable, "target"])
    asins = sorted(needed | set(listed_gallery["asin"]))
    files = index_image_files(images_dir, list(data["categories"]))
    loaded, images, failed = load_pictures(asins, files, data)
    if asins and not loaded:
        raise FashionIQDataMissingError(
            f"none of the {len(asins)} FashionIQ pictures the pairs need is readable in "
            f"{images_dir}: put the <asin>.jpg or .png files there (README: FashionIQ)"
        )
    row_of = {asin: row for row, asin in enumerate(loaded)}
    outcomes = annotations.apply(_pair_outcome, axis=1, failed=failed).rename("outcome")
    if len(annotations) == 0:
        outcomes = pd.Series([], dtype=str, name="outcome")
    pairs = annotations[outcomes == "kept"].copy()
    pairs["candidate_row"] = pairs["candidate"].map(row_of).astype("int64")
    pairs["target_row"] = pairs["target"].map(row_of).astype("int64")
    category_id = {c: i for i, c in enumerate(data["categories"])}
    pairs["category_id"] = pairs["category"].map(category_id).astype("int64")
    gallery = listed_gallery[listed_gallery["asin"].isin(row_of)].copy()
    gallery["row"] = gallery["asin"].map(row_of).astype("int64")

    missing = sorted(a for a, why in failed.items() if why == "missing")
    unreadable = {a: why for a, why in failed.items() if why != "missing"}
    groups = annotations.groupby(["category", "split"], sort=False).groups
    gallery_groups = listed_gallery.groupby(["category", "split"], sort=False)["asin"]
    report = {
        "images_dir": str(images_dir),
        "image_size": int(data["image_size"]),
        "channels": int(data["channels"]),
        "images": {
            "referenced": len(asins),
            "loaded": len(loaded),
            "missing": len(missing),
            "unreadable": len(unreadable),
        },
        "pairs": _counts(outcomes),
        "pairs_by_split": {
            f"{c}/{s}": _counts(outcomes.loc[index]) for (c, s), index in groups.items()
        },
        "gallery": {
            f"{c}/{s}": {
                "listed": int(len(listed)),
                "kept": int(listed.isin(row_of).sum()),
                "missing": int(listed.map(lambda a: failed.get(a) == "missing").sum()),
                "unreadable": int(listed.isin(unreadable).sum()),
            }
            for (c, s), listed in gallery_groups
        },
        "examples": {
            "missing": missing[:10],
            "unreadable": [why.removeprefix("unreadable: ") for why in unreadable.values()][:10],
        },
    }
    _log_report(report)
    items = pd.DataFrame({"row": range(len(loaded)), "asin": loaded})
    return {"images": images}, items, pairs.reset_index(drop=True), gallery, report


def _log_report(report: dict[str, Any]) -> None:
    pics, pairs = report["images"], report["pairs"]
    log.info(
        "FashionIQ: %d of %d pictures loaded (%d missing, %d unreadable); %d of %d pairs kept "
        "(%d missing a picture, %d with an unreadable one, %d without target, %d without caption)",
        pics["loaded"],
        pics["referenced"],
        pics["missing"],
        pics["unreadable"],
        pairs["kept"],
        pairs["total"],
        pairs["missing_image"],
        pairs["unreadable_image"],
        pairs["no_target"],
        pairs["no_caption"],
    )
    if pics["missing"] or pics["unreadable"]:
        log.warning(
            "FashionIQ pictures not usable, e.g. missing %s; unreadable %s",
            report["examples"]["missing"][:3],
            report["examples"]["unreadable"][:3],
        )
