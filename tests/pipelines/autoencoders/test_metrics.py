import math

import pytest
import torch

from fashiongan.pipelines.autoencoders.metrics import (
    PSNR_CAP_DB,
    mse_per_image,
    psnr_per_image,
    reconstruction_metrics,
    ssim_per_image,
)


def _images(n: int = 4) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1


def test_identical_images_psnr_is_capped_and_ssim_is_one():
    images = _images()
    assert torch.equal(psnr_per_image(images, images), torch.full((4,), PSNR_CAP_DB))
    assert torch.allclose(ssim_per_image(images, images), torch.ones(4))
    assert reconstruction_metrics(images, images) == pytest.approx(
        {"mse": 0.0, "psnr_db": PSNR_CAP_DB, "ssim": 1.0}
    )
    assert psnr_per_image(images, images, cap_db=60.0).max() == 60.0


def test_psnr_matches_its_definition_on_the_unit_scale():
    target = torch.zeros(2, 1, 28, 28)  # 0.5 on [0, 1]
    preds = target + 0.2  # 0.6 on [0, 1]: MSE 0.01 → 20 dB
    assert torch.allclose(mse_per_image(preds, target), torch.full((2,), 0.01))
    assert torch.allclose(psnr_per_image(preds, target), torch.full((2,), 20.0), atol=1e-4)
    assert math.isclose(10 * math.log10(1 / 0.01), 20.0)


def test_worse_reconstruction_scores_worse():
    images = _images()
    slightly = (images + 0.05 * torch.randn_like(images)).clamp(-1, 1)
    badly = (images + 0.5 * torch.randn_like(images)).clamp(-1, 1)
    good, bad = reconstruction_metrics(slightly, images), reconstruction_metrics(badly, images)
    assert good["mse"] < bad["mse"] and good["psnr_db"] > bad["psnr_db"]
    assert good["ssim"] > bad["ssim"]


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="shape mismatch"):
        psnr_per_image(_images(2), _images(3))


def test_images_must_be_a_batch():
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        mse_per_image(_images(2)[0], _images(2)[0])
