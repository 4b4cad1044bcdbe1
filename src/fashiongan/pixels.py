"""Pixel conversions between the three ranges the project uses.

Models read and write float images in [-1, 1] (B, C, H, W); files and screens hold uint8 in
[0, 255]; image metrics (PSNR, SSIM, Inception's input, the attribute measures) want [0, 1].
"""

from __future__ import annotations

import torch


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] (B, C, H, W) → uint8 [0, 255] (B, H, W, C), channels last for image files."""
    scaled = ((images.detach().cpu().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return scaled.permute(0, 2, 3, 1)


def from_uint8(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] (any shape) → float32 in [-1, 1], the same shape."""
    return pixels.float() / 127.5 - 1.0


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] → float32 in [0, 1], clamped, on the CPU (same shape)."""
    return ((images.detach().float().cpu() + 1) / 2).clamp(0, 1)
