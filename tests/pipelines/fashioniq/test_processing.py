import json

import pytest
import torch

from fashiongan.config import ConfigError, load_parameters, parse_block
from fashiongan.fashioniq_files import (
    FashionIQDataMissingError,
    FashionIQFormatError,
    index_image_files,
    join_captions,
)
from fashiongan.pipelines.fashioniq_processing.nodes import ingest_images, read_annotations
from tests.conftest import REPO_ROOT
from tests.pipelines.fashioniq.conftest import (
    EXPECTED_IMAGES,
    EXPECTED_PAIRS,
    EXPECTED_TRAIN_PAIRS,
    EXPECTED_VAL_PAIRS,
    asin,
    colour,
    data_params,
    write_fashioniq_fixture,
)


def test_reads_the_official_format(ingested):
    annotations, listed, _ = ingested
    assert len(annotations) == EXPECTED_PAIRS["total"]
    test = annotations[annotations["split"] == "test"]
    assert len(test) == 9 and test["target"].isna().all()
    first = annotations.iloc[0]
    assert (first["category"], first["split"], first["position"]) == ("dress", "train", 0)
    assert (first["candidate"], first["target"]) == (
        asin("dress", "train", 0),
        asin("dress", "train", 3),
    )
    assert list(first["captions"]) == ["is grey", "has long sleeves"]
    assert first["caption"] == "is grey and has long sleeves"
    odd = annotations[(annotations["category"] == "dress") & (annotations["position"] == 1)]
    assert odd.iloc[0]["caption"] == "green and is blue"  # spaces and full stops trimmed
    assert len(listed) == 24 and set(listed["split"]) == {"val"}


def test_ingestion_counts(ingested):
    _, _, (images, items, pairs, gallery, report) = ingested
    assert report["images"] == EXPECTED_IMAGES
    assert report["pairs"] == EXPECTED_PAIRS
    by_split = report["pairs_by_split"]
    assert by_split["dress/train"] | {} == {
        "total": 8,
        "kept": 6,
        "missing_image": 2,
        "unreadable_image": 0,
        "no_target": 0,
        "no_caption": 0,
    }
    assert (by_split["toptee/train"]["unreadable_image"], by_split["toptee/train"]["kept"]) == (
        2,
        6,
    )
    assert (by_split["shirt/val"]["missing_image"], by_split["shirt/val"]["kept"]) == (2, 3)
    assert (by_split["toptee/val"]["no_caption"], by_split["toptee/val"]["kept"]) == (1, 4)
    assert all(by_split[f"{c}/test"]["no_target"] == 3 for c in ("dress", "shirt", "toptee"))
    assert report["gallery"]["shirt/val"] == {"listed": 8, "kept": 7, "missing": 1, "unreadable": 0}
    assert report["examples"]["missing"] == [asin("dress", "train", 5), asin("shirt", "val", 4)]
    assert "not a readable image" in report["examples"]["unreadable"][0]
    json.dumps(report)  # a JSON metrics file for DVC

    assert (pairs["split"] == "train").sum() == EXPECTED_TRAIN_PAIRS
    assert (pairs["split"] == "val").sum() == EXPECTED_VAL_PAIRS
    assert len(gallery) == 23 and len(items) == EXPECTED_IMAGES["loaded"]


def test_pictures_are_resized_scaled_and_indexed(ingested):
    _, _, (images, items, pairs, gallery, _) = ingested
    pictures = images["images"]
    assert pictures.shape == (51, 3, 64, 64) and pictures.dtype == torch.float16
    assert pictures.min() >= -1 and pictures.max() <= 1
    asins = items.set_index("row")["asin"]
    assert (pairs["candidate_row"].map(asins) == pairs["candidate"]).all()
    assert (pairs["target_row"].map(asins) == pairs["target"]).all()
    assert (gallery["row"].map(asins) == gallery["asin"]).all()
    # the inside of shirt train item 4 (a PNG): its colour, scaled to [-1, 1]
    row = int(items.loc[items["asin"] == asin("shirt", "train", 4), "row"].iloc[0])
    expected = torch.tensor(colour("shirt", "train", 4), dtype=torch.float32) / 127.5 - 1
    assert torch.allclose(pictures[row, :, 34, 32].float(), expected, atol=0.02)
    grey = int(items.loc[items["asin"] == asin("dress", "val", 0), "row"].iloc[0])
    assert torch.equal(pictures[grey, 0], pictures[grey, 1])  # greyscale → RGB
    assert set(pairs["category_id"]) == {0, 1, 2}


def test_missing_data_says_what_and_where(tmp_path):
    data = data_params(tmp_path / "data/01_raw/fashioniq")
    with pytest.raises(FashionIQDataMissingError) as error:
        read_annotations(data)
    root = tmp_path / "data/01_raw/fashioniq"
    assert str(error.value) == (
        f"{root}/captions/cap.dress.train.json not found (and 11 more FashionIQ files): "
        f"download captions/ and image_splits/ from https://github.com/XiaoxiaoGuo/fashion-iq "
        f"into {root} and put the pictures (<asin>.jpg or .png) in {root}/images "
        "(README: FashionIQ)"
    )
    assert "\n" not in str(error.value)
    write_fashioniq_fixture(root, images_dir=tmp_path / "elsewhere")
    with pytest.raises(FashionIQDataMissingError, match=r"^.*/images not found: download"):
        read_annotations(data)


def test_bad_picture_settings_name_the_parameter(tmp_path):
    """dtype and channels are checked with the parameters; the size before reading files."""
    block = load_parameters(REPO_ROOT / "conf")["fashioniq"].model_dump()
    for key, value in (("dtype", "float8"), ("channels", 4)):
        with pytest.raises(ConfigError, match=f"fashioniq.data.{key}: "):
            parse_block("fashioniq", block | {"data": block["data"] | {key: value}})
    with pytest.raises(ValueError, match="fashioniq.data.image_size must be >= 8, got 4"):
        read_annotations(data_params(tmp_path, image_size=4))


def test_no_readable_picture_is_an_error(tmp_path):
    write_fashioniq_fixture(tmp_path, images_dir=tmp_path / "elsewhere")
    (tmp_path / "images").mkdir()
    data = data_params(tmp_path)
    with pytest.raises(FashionIQDataMissingError, match="none of the 54 FashionIQ pictures"):
        ingest_images(*read_annotations(data), data)


def test_format_errors_name_the_file(tmp_path):
    write_fashioniq_fixture(tmp_path)
    path = tmp_path / "captions/cap.shirt.val.json"
    path.write_text(json.dumps([{"target": "B1", "captions": ["is red", "is long"]}]))
    with pytest.raises(
        FashionIQFormatError, match=r"cap.shirt.val.json: entry 0 needs a 'candidate'"
    ):
        read_annotations(data_params(tmp_path))
    path.write_text("{not json")
    with pytest.raises(FashionIQFormatError, match="cap.shirt.val.json is not valid JSON"):
        read_annotations(data_params(tmp_path))


def test_join_captions_and_image_lookup(tmp_path):
    assert join_captions(["Is darker.", " has long sleeves?"]) == "Is darker and has long sleeves"
    assert join_captions(["", " "]) == ""
    (tmp_path / "dress").mkdir()
    for name in ("A1.jpg", "A1.png", "dress/A2.JPG", "dress/A1.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    files = index_image_files(tmp_path, ["dress"])
    assert files == {"A1": tmp_path / "A1.png", "A2": tmp_path / "dress/A2.JPG"}
