"""Nodes of ``fashioniq_processing``: the official FashionIQ files → image tensors and pair tables.

Reading the official layout lives in :mod:`fashiongan.fashioniq_files`. Missing and unreadable
pictures are counted, never fatal; a pair without both pictures is dropped with a count. The
official test captions have no ``target`` (the challenge server kept them): such pairs are
counted as ``no_target`` and left out.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from fashiongan.config import FashionIQData
from fashiongan.fashioniq_files import (
    PAIR_COLUMNS,
    FashionIQDataMissingError,
    caption_file,
    check_layout,
    index_image_files,
    load_pictures,
    read_caption_file,
    read_split_file,
    split_file,
)

log = logging.getLogger(__name__)

#: Why a pair was left out; ``kept`` + these = ``total`` in the ingestion report.
PAIR_OUTCOMES = ("kept", "missing_image", "unreadable_image", "no_target", "no_caption")


def read_annotations(data: FashionIQData) -> tuple[pd.DataFrame, pd.DataFrame]:
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
    joiner = data.caption_joiner
    pairs = [
        row
        for category in data.categories
        for split in data.splits
        for row in read_caption_file(caption_file(data, category, split), category, split, joiner)
    ]
    gallery = [
        row
        for category in data.categories
        for split in data.gallery_splits
        for row in read_split_file(split_file(data, category, split), category, split)
    ]
    return (
        pd.DataFrame(pairs, columns=list(PAIR_COLUMNS)),
        pd.DataFrame(gallery, columns=["category", "split", "asin"]),
    )


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
    annotations: pd.DataFrame, listed_gallery: pd.DataFrame, data: FashionIQData
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
    images_dir = Path(data.images_dir)
    usable = annotations["target"].notna() & (annotations["caption"] != "")
    needed = set(annotations.loc[usable, "candidate"]) | set(annotations.loc[usable, "target"])
    asins = sorted(needed | set(listed_gallery["asin"]))
    files = index_image_files(images_dir, list(data.categories))
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
    category_id = {c: i for i, c in enumerate(data.categories)}
    pairs["category_id"] = pairs["category"].map(category_id).astype("int64")
    gallery = listed_gallery[listed_gallery["asin"].isin(row_of)].copy()
    gallery["row"] = gallery["asin"].map(row_of).astype("int64")

    missing = sorted(a for a, why in failed.items() if why == "missing")
    unreadable = {a: why for a, why in failed.items() if why != "missing"}
    groups = annotations.groupby(["category", "split"], sort=False).groups
    gallery_groups = listed_gallery.groupby(["category", "split"], sort=False)["asin"]
    report = {
        "images_dir": str(images_dir),
        "image_size": data.image_size,
        "channels": data.channels,
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
