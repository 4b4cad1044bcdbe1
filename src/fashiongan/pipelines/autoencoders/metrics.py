"""Image-quality metrics for reconstructions: MSE, PSNR and SSIM per image, averaged.

All three are computed on intensities in [0, 1] (images in [-1, 1] are mapped by (x + 1) / 2),
with torchmetrics' functional implementations (SSIM: 11×11 Gaussian window, σ = 1.5).

PSNR of identical images is +inf (zero error). To keep means finite, each image's PSNR is capped
at ``PSNR_CAP_DB`` = 100 dB before averaging. 100 dB is far above anything a non-identical 8-bit
image can reach: one grey level off on one pixel of a 28×28 image is already
10·log10(255²·784) ≈ 77 dB, so the cap only ever touches exact copies.
"""

from __future__ import annotations

import torch

from fashiongan.pixels import to_unit

# torchmetrics is imported inside the functions: it pulls in torch._dynamo (seconds), which
# pipelines that only import this package (e.g. for fit_epochs) should not pay for.

PSNR_CAP_DB = 100.0


def _check_pair(preds: torch.Tensor, target: torch.Tensor) -> None:
    if preds.shape != target.shape:
        raise ValueError(f"shape mismatch: {tuple(preds.shape)} vs {tuple(target.shape)}")
    if preds.ndim != 4:
        raise ValueError(f"expected images of shape (B, C, H, W), got {tuple(preds.shape)}")


def mse_per_image(preds: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B,) mean squared error on the [0, 1] scale of images in [-1, 1]."""
    _check_pair(preds, target)
    return (to_unit(preds) - to_unit(target)).pow(2).flatten(1).mean(1)


def psnr_per_image(
    preds: torch.Tensor, target: torch.Tensor, cap_db: float = PSNR_CAP_DB
) -> torch.Tensor:
    """(B,) PSNR in dB (data range 1), capped at ``cap_db`` (identical images → ``cap_db``)."""
    from torchmetrics.functional.image import peak_signal_noise_ratio

    _check_pair(preds, target)
    psnr = peak_signal_noise_ratio(
        to_unit(preds), to_unit(target), data_range=1.0, reduction="none", dim=(1, 2, 3)
    )
    return psnr.clamp(max=cap_db)


def ssim_per_image(preds: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B,) SSIM (data range 1); 1 for identical images."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    _check_pair(preds, target)
    return structural_similarity_index_measure(
        to_unit(preds), to_unit(target), data_range=1.0, reduction="none"
    )


def reconstruction_metrics(
    preds: torch.Tensor, target: torch.Tensor, cap_db: float = PSNR_CAP_DB
) -> dict[str, float]:
    """Means over images of MSE, PSNR (dB, capped) and SSIM."""
    return {
        "mse": mse_per_image(preds, target).mean().item(),
        "psnr_db": psnr_per_image(preds, target, cap_db).mean().item(),
        "ssim": ssim_per_image(preds, target).mean().item(),
    }
