"""A FashionIQ fixture in exactly the official format, drawn by the tests.

Per category (dress, shirt, toptee): 10 train, 8 val and 6 test gallery ASINs; 8 train pairs
(candidate g[j] → target g[(j + 3) % 10]), 5 val pairs (v[j] → v[(j + 2) % 8]) and 3 test pairs
without target, as the official test files. Pictures are 32×32, PNG or JPEG, one greyscale.
Faults, each counted by ingestion:

- dress train g5 has no picture: 2 train pairs dropped;
- shirt val v4 has no picture: 2 val pairs dropped, the shirt val gallery keeps 7 of 8;
- toptee train g6 is a corrupt file: 2 train pairs dropped;
- toptee val pair 4 has only blank captions: dropped as ``no_caption``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fashiongan.config import FashionIQData
from fashiongan.pipelines.fashioniq_processing.nodes import ingest_images, read_annotations

CATEGORIES = ("dress", "shirt", "toptee")
SPLIT_SIZES = {"train": 10, "val": 8, "test": 6}
SPLIT_LETTER = {"train": "R", "val": "V", "test": "E"}
COLOURS = ("black", "red", "white", "blue", "green", "grey", "pink", "navy")
DETAILS = ("long sleeves", "a floral print", "no sleeves", "a collar", "stripes", "a belt")

MISSING = {("dress", "train", 5), ("shirt", "val", 4)}
CORRUPT = {("toptee", "train", 6)}

#: What ingestion must report for this fixture (default parameters: splits train/val/test,
#: gallery split val).
EXPECTED_IMAGES = {"referenced": 54, "loaded": 51, "missing": 2, "unreadable": 1}
EXPECTED_PAIRS = {
    "total": 48,
    "kept": 32,
    "missing_image": 4,
    "unreadable_image": 2,
    "no_target": 9,
    "no_caption": 1,
}
EXPECTED_TRAIN_PAIRS, EXPECTED_VAL_PAIRS, EXPECTED_IDENTITY = 20, 12, 5


def asin(category: str, split: str, i: int) -> str:
    """A 10-character ASIN-like id, e.g. ``BDR0000003`` (dress, train, 3)."""
    return f"B{category[0].upper()}{SPLIT_LETTER[split]}{i:07d}"


def colour(category: str, split: str, i: int) -> tuple[int, int, int]:
    """The item's RGB fill: distinct per item, so retrieval has something to find."""
    c, s = CATEGORIES.index(category), list(SPLIT_SIZES).index(split)
    return (40 + 20 * i, 60 + 60 * c, 50 + 70 * s)


def draw(category: str, split: str, i: int) -> Image.Image:
    """A 32×32 garment silhouette on white: dress (long), shirt (T shape), toptee (short)."""
    canvas = np.full((32, 32, 3), 255, dtype=np.uint8)
    fill = colour(category, split, i)
    if category == "dress":
        canvas[4:30, 10:22] = fill
    elif category == "shirt":
        canvas[6:12, 4:28] = fill
        canvas[6:26, 10:22] = fill
    else:
        canvas[8:20, 8:24] = fill
    if i % 3 == 0:
        canvas[::4, :] = canvas[::4, :] // 2  # stripes on every third item
    return Image.fromarray(canvas, mode="RGB")


def captions_for(category: str, split: str, j: int) -> list[str]:
    if (category, split, j) == ("toptee", "val", 4):
        return ["", "  "]  # nothing to condition on
    if (category, split, j) == ("dress", "train", 1):
        return [" green", "is blue."]  # the annotators' spacing and punctuation
    return [f"is {COLOURS[(j + len(category)) % 8]}", f"has {DETAILS[j % 6]}"]


def write_fashioniq_fixture(root: Path, images_dir: Path | None = None) -> Path:
    """Write captions/, image_splits/ and the pictures; return the images folder."""
    images_dir = images_dir or root / "images"
    for folder in (root / "captions", root / "image_splits", images_dir):
        folder.mkdir(parents=True, exist_ok=True)
    for category in CATEGORIES:
        for split, size in SPLIT_SIZES.items():
            ids = [asin(category, split, i) for i in range(size)]
            (root / "image_splits" / f"split.{category}.{split}.json").write_text(json.dumps(ids))
            if split == "train":
                pairs = [
                    {"target": ids[(j + 3) % 10], "candidate": ids[j], "captions": None}
                    for j in range(8)
                ]
            elif split == "val":
                pairs = [
                    {"target": ids[(j + 2) % 8], "candidate": ids[j], "captions": None}
                    for j in range(5)
                ]
            else:  # the official test files withhold the target
                pairs = [{"candidate": ids[j], "captions": None} for j in range(3)]
            for j, pair in enumerate(pairs):
                pair["captions"] = captions_for(category, split, j)
            (root / "captions" / f"cap.{category}.{split}.json").write_text(
                json.dumps(pairs, indent=4)
            )
            if split == "test":
                continue  # not loaded by default: no gallery, no targets
            for i, name in enumerate(ids):
                key = (category, split, i)
                if key in MISSING:
                    continue
                if key in CORRUPT:
                    (images_dir / f"{name}.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
                    continue
                picture = draw(category, split, i)
                if (category, split, i) == ("dress", "val", 0):
                    picture.convert("L").save(images_dir / f"{name}.png")  # greyscale
                elif i % 2:
                    picture.save(images_dir / f"{name}.jpg", quality=95)
                else:
                    picture.save(images_dir / f"{name}.png")
    return images_dir


def data_params(root: Path, **overrides) -> FashionIQData:
    """``fashioniq.data`` for a fixture at ``root`` (the defaults of parameters_fashioniq.yml)."""
    return FashionIQData.model_validate(
        {
            "root": str(root),
            "images_dir": str(root / "images"),
            "categories": list(CATEGORIES),
            "splits": ["train", "val", "test"],
            "gallery_splits": ["val"],
            "caption_joiner": " and ",
            "image_size": 64,
            "channels": 3,
            "dtype": "float16",
            "workers": 2,
            **overrides,
        }
    )


@pytest.fixture(scope="session")
def ingested(tmp_path_factory):
    """(annotations, listed gallery, ingest_images outputs) of the fixture, once per session."""
    root = tmp_path_factory.mktemp("fashioniq")
    write_fashioniq_fixture(root)
    data = data_params(root)
    annotations, listed = read_annotations(data)
    return annotations, listed, ingest_images(annotations, listed, data)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """One intra-op thread: on the shared 2-core machine, more threads only contend (4× slower)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
