"""Pictures in and out: reading user-supplied images safely (any file a shopper uploads or a CLI
user names), and laying model images out as one picture (the app, the figures)."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from fashiongan.pixels import to_uint8

#: Refuse files larger than this before decoding (bytes) and images with more pixels than this.
MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 40_000_000


class ImageInputError(ValueError):
    """The input is not a usable image; the message says why, in one line."""


def open_image(source: str | Path | bytes | Image.Image) -> Image.Image:
    """Open and fully decode an image, refusing non-images, huge files and decompression bombs."""
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise ImageInputError(f"{path}: no such file")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ImageInputError(f"{path.name}: file is over {MAX_FILE_BYTES // 2**20} MB")
        data = path.read_bytes()
        name = path.name
    else:
        data, name = source, "upload"
        if len(data) > MAX_FILE_BYTES:
            raise ImageInputError(f"{name}: file is over {MAX_FILE_BYTES // 2**20} MB")
    if not data:
        raise ImageInputError(f"{name}: the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.width * image.height > MAX_PIXELS:
                raise ImageInputError(f"{name}: {image.width}×{image.height} pixels is too large")
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageInputError(f"{name}: refused as a decompression bomb ({err})") from err
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        if isinstance(err, ImageInputError):
            raise
        raise ImageInputError(f"{name}: not a readable image ({type(err).__name__})") from err
    return image


def to_model_input(image: Image.Image, image_size: int, channels: int) -> torch.Tensor:
    """Convert any mode (RGBA, 16-bit, CMYK, palette…) to L or RGB, resize, scale to [-1, 1].

    Transparent areas become black, the Fashion-MNIST background; an EXIF orientation (phone
    photos) is applied first, so the picture is upright as viewers show it.

    Returns:
        (1, channels, image_size, image_size) float32.

    Raises:
        ImageInputError: a mode Pillow cannot convert (LAB, La, …).
    """
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):  # 16/32-bit grey or float: to 8 bits
        array = np.nan_to_num(np.asarray(image, dtype=np.float64))
        span = float(array.max() - array.min()) or 1.0
        image = Image.fromarray(((array - array.min()) / span * 255).astype(np.uint8), mode="L")
    if image.mode in ("RGBA", "LA", "P", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        image = Image.alpha_composite(background, rgba)
    try:
        image = image.convert("L" if channels == 1 else "RGB")
    except ValueError as err:
        raise ImageInputError(
            f"unsupported image mode {image.mode}: save the picture as an RGB PNG or JPEG"
        ) from err
    image = image.resize((image_size, image_size), Image.Resampling.BILINEAR)
    array = np.asarray(image, dtype=np.float32)
    array = array[None] if channels == 1 else array.transpose(2, 0, 1)
    return torch.from_numpy(array / 127.5 - 1.0).unsqueeze(0)


def load_image(
    source: str | Path | bytes | Image.Image, image_size: int, channels: int
) -> torch.Tensor:
    """:func:`open_image` then :func:`to_model_input`."""
    return to_model_input(open_image(source), image_size, channels)


def tile(images: torch.Tensor, ncols: int, pad: int = 2) -> np.ndarray:
    """(n, C, H, W) in [-1, 1] → one uint8 (rows·(H+pad)+pad, cols·(W+pad)+pad, C) picture.

    Row by row, ``ncols`` per row (fewer when there are fewer images), on white with ``pad``
    pixels between and around the images. The one grid layout of the project: the app shows it
    enlarged, :func:`fashiongan.plotting.image_grid` draws it in a figure.
    """
    pixels = to_uint8(images).numpy()  # (n, H, W, C)
    n, h, w, c = pixels.shape
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    canvas = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, c), 255, np.uint8)
    for i, picture in enumerate(pixels):
        top, left = pad + (i // ncols) * (h + pad), pad + (i % ncols) * (w + pad)
        canvas[top : top + h, left : left + w] = picture
    return canvas


def to_picture(pixels: np.ndarray, scale: int = 1) -> Image.Image:
    """uint8 (H, W, C) with C = 1 or 3 → a PIL picture (L or RGB), enlarged ×scale, hard edges."""
    picture = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
    return picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
