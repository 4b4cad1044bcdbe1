import logging

import numpy as np
import pytest
import torch

from fashiongan.attributes import (
    FITS,
    PATTERNS,
    TONES,
    assign,
    fit_thresholds,
    measure,
    to_unit,
)
from fashiongan.datasets import TensorDictDataset
from tests.text.conftest import as_model_input, draw_box, random_items


def test_constants():
    assert TONES == ("dark", "medium", "light")
    assert FITS == ("slim", "regular", "wide")
    assert PATTERNS == ("plain", "patterned")


def test_measures_of_a_plain_box():
    box = draw_box(height=20, width=10, tone=204)
    got = measure(as_model_input(box[None]))
    assert got["intensity"].item() == pytest.approx(204 / 255, abs=1e-3)
    assert got["width"].item() == pytest.approx(10 / 20)  # mean row width / height
    assert got["texture"].item() == pytest.approx(0.0, abs=1e-6)  # the outline does not count


def test_stripes_have_texture_and_lower_mean_intensity():
    plain, striped = draw_box(tone=200), draw_box(tone=200, stripes=True)
    got = measure(as_model_input(np.stack([plain, striped])))
    assert got["texture"][1] > 0.1 > got["texture"][0]
    assert got["width"][0] == pytest.approx(got["width"][1])  # stripes keep the silhouette


def test_input_forms_agree():
    images = np.stack([draw_box(tone=90), draw_box(width=20, stripes=True)])
    reference = measure(as_model_input(images))
    for form in (torch.from_numpy(images), torch.from_numpy(images).unsqueeze(1)):
        got = measure(form)
        for key in reference:
            torch.testing.assert_close(got[key], reference[key], atol=1e-5, rtol=0)


def test_empty_image_and_empty_batch():
    got = measure(torch.full((1, 1, 28, 28), -1.0))
    assert all(v.item() == 0.0 for v in got.values())
    assert all(v.shape == (0,) for v in measure(torch.zeros(0, 1, 28, 28)).values())


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (torch.zeros(2, 3, 28, 28), "grayscale"),
        (torch.full((1, 1, 28, 28), 2.0), r"\[-1, 1\]"),
        (torch.zeros(1, 1, 28, 28, dtype=torch.int32), "uint8 or floating"),
    ],
)
def test_bad_images_are_named(images, message):
    with pytest.raises(ValueError, match=message):
        to_unit(images)


def _fit_one_class(images: list[np.ndarray]) -> dict[str, torch.Tensor]:
    batch = as_model_input(np.stack(images))
    return fit_thresholds(batch, torch.zeros(len(images), dtype=torch.long), n_classes=1)


def test_darker_box_is_dark_lighter_box_is_light():
    thresholds = _fit_one_class([draw_box(tone=t) for t in range(60, 256, 5)])
    probe = as_model_input(np.stack([draw_box(tone=70), draw_box(tone=150), draw_box(tone=250)]))
    got = assign(probe, torch.zeros(3, dtype=torch.long), thresholds)
    assert got["tone"].tolist() == [0, 1, 2]
    assert got["tone"].dtype == torch.int64


def test_wider_box_is_wide():
    thresholds = _fit_one_class([draw_box(width=w) for w in range(4, 27)])
    probe = as_model_input(np.stack([draw_box(width=5), draw_box(width=14), draw_box(width=25)]))
    got = assign(probe, torch.zeros(3, dtype=torch.long), thresholds)
    assert got["fit"].tolist() == [0, 1, 2]


def test_stripes_are_patterned():
    training = [draw_box(tone=t, stripes=s) for t in range(80, 256, 8) for s in (False, True)]
    thresholds = _fit_one_class(training)
    probe = as_model_input(np.stack([draw_box(tone=120), draw_box(tone=120, stripes=True)]))
    got = assign(probe, torch.zeros(2, dtype=torch.long), thresholds)
    assert got["pattern"].tolist() == [0, 1]


def test_cut_points_are_per_class():
    # class 0 boxes are all darker than class 1 boxes: a tone-150 box is light for class 0
    # and dark for class 1.
    dark_class = [draw_box(tone=t) for t in range(60, 160, 4)]
    light_class = [draw_box(tone=t) for t in range(150, 256, 4)]
    images = as_model_input(np.stack(dark_class + light_class))
    labels = torch.tensor([0] * len(dark_class) + [1] * len(light_class))
    thresholds = fit_thresholds(images, labels, n_classes=2)
    probe = as_model_input(np.stack([draw_box(tone=150)] * 2))
    assert assign(probe, torch.tensor([0, 1]), thresholds)["tone"].tolist() == [2, 0]


def test_tertiles_are_balanced_per_class_on_random_items():
    train_images, train_labels = random_items(2000, seed=0)
    thresholds = fit_thresholds(train_images, train_labels)
    assert thresholds["tone_cuts"].shape == (10, 2)
    assert thresholds["fit_cuts"].shape == (10, 2)
    assert thresholds["pattern_cuts"].shape == (10, 1)
    fresh_images, fresh_labels = random_items(3000, seed=1)
    for images, labels, tol in (
        (train_images, train_labels, 0.05),
        (fresh_images, fresh_labels, 0.15),
    ):
        got = assign(images, labels, thresholds)
        for cls in range(10):
            members = labels == cls
            for key, n_values in (("tone", 3), ("fit", 3), ("pattern", 2)):
                share = torch.bincount(got[key][members], minlength=n_values).float()
                share /= members.sum()
                assert torch.allclose(share, torch.full_like(share, 1 / n_values), atol=tol), (
                    cls,
                    key,
                    share,
                )


def test_missing_class_falls_back_to_all_items(caplog):
    images, _ = random_items(30, seed=2)
    labels = torch.zeros(30, dtype=torch.long)
    with caplog.at_level(logging.WARNING):
        thresholds = fit_thresholds(images, labels, n_classes=2)
    assert "class 1 has no training items" in caplog.text
    torch.testing.assert_close(thresholds["tone_cuts"][1], thresholds["tone_cuts"][0])


def test_bad_labels_and_thresholds_are_named():
    images, labels = random_items(20, seed=3)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 10\)"):
        fit_thresholds(images, labels + 5)
    with pytest.raises(ValueError, match="length 20"):
        fit_thresholds(images, labels[:5])
    with pytest.raises(KeyError, match="fit_cuts"):
        assign(
            images, labels, {"tone_cuts": torch.zeros(10, 2), "pattern_cuts": torch.zeros(10, 1)}
        )


def test_thresholds_survive_a_safetensors_round_trip(tmp_path):
    images, labels = random_items(100, seed=4)
    thresholds = fit_thresholds(images, labels, mask_threshold=0.1)
    dataset = TensorDictDataset(str(tmp_path / "thresholds.safetensors"))
    dataset.save(thresholds)
    loaded = dataset.load()
    assert float(loaded["mask_threshold"]) == pytest.approx(0.1)
    for key, value in assign(images, labels, thresholds).items():
        assert torch.equal(assign(images, labels, loaded)[key], value)
