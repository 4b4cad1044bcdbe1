"""fashiongan.images: every way a user's picture can be odd, refused or converted."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

import fashiongan.images as images
from fashiongan.images import ImageInputError, load_image, open_image, to_model_input


def _encoded(image: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def test_path_bytes_and_pil_give_the_same_tensor(tmp_path):
    picture = Image.fromarray(np.arange(28 * 28, dtype=np.uint8).reshape(28, 28))
    path = tmp_path / "item.png"
    picture.save(path)
    from_path = load_image(path, 28, 1)
    assert from_path.shape == (1, 1, 28, 28) and from_path.dtype == torch.float32
    torch.testing.assert_close(from_path, load_image(path.read_bytes(), 28, 1))
    torch.testing.assert_close(from_path, load_image(picture, 28, 1))
    assert from_path.min() == -1.0 and from_path.max() == pytest.approx(255 / 127.5 - 1.0)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (b"", "upload: the file is empty"),
        (b"GIF89a not really", "upload: not a readable image"),
        (b"plain text, not a picture", "upload: not a readable image"),
    ],
)
def test_non_images_are_refused_in_one_line(source, message):
    with pytest.raises(ImageInputError, match=message) as info:
        open_image(source)
    assert "\n" not in str(info.value)


def test_missing_empty_and_truncated_files_name_the_file(tmp_path):
    with pytest.raises(ImageInputError, match="nope.png: no such file"):
        open_image(tmp_path / "nope.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageInputError, match="empty.png: the file is empty"):
        open_image(tmp_path / "empty.png")
    data = _encoded(Image.new("RGB", (64, 64), (10, 200, 30)))
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageInputError, match="cut.png: not a readable image"):
        open_image(tmp_path / "cut.png")


def test_size_limits_on_bytes_and_pixels(tmp_path, monkeypatch):
    data = _encoded(Image.new("L", (40, 30)))
    monkeypatch.setattr(images, "MAX_FILE_BYTES", len(data) - 1)
    with pytest.raises(ImageInputError, match="file is over"):
        open_image(data)
    (tmp_path / "big.png").write_bytes(data)
    with pytest.raises(ImageInputError, match="big.png: file is over"):
        open_image(tmp_path / "big.png")
    monkeypatch.setattr(images, "MAX_FILE_BYTES", 10 * len(data))
    monkeypatch.setattr(images, "MAX_PIXELS", 40 * 30 - 1)
    with pytest.raises(ImageInputError, match="40×30 pixels is too large"):
        open_image(data)


def test_decompression_bomb_is_refused_before_decoding(monkeypatch):
    data = _encoded(Image.new("L", (100, 100)))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 4000)  # 10,000 px > 2×: PIL's bomb error
    with pytest.raises(ImageInputError, match="decompression bomb"):
        open_image(data)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 6000)  # 10,000 px > 1×: PIL's bomb warning
    with pytest.raises(ImageInputError, match="decompression bomb"):
        open_image(data)


@pytest.mark.parametrize(
    ("mode", "color"),
    [
        ("1", 1),
        ("L", 200),
        ("P", 3),
        ("RGB", (200, 200, 200)),
        ("RGBA", (200, 200, 200, 255)),
        ("LA", (200, 255)),
        ("CMYK", (0, 0, 0, 55)),
        ("YCbCr", (200, 128, 128)),
        ("I;16", 40000),
        ("I", 70000),
    ],
)
@pytest.mark.parametrize("channels", [1, 3])
def test_every_common_mode_becomes_l_or_rgb_in_range(mode, color, channels):
    tensor = to_model_input(Image.new(mode, (30, 20), color), 28, channels)
    assert tensor.shape == (1, channels, 28, 28) and tensor.dtype == torch.float32
    assert tensor.min() >= -1.0 and tensor.max() <= 1.0 and torch.isfinite(tensor).all()


def test_transparent_pixels_become_the_black_background():
    picture = Image.new("RGBA", (28, 28), (255, 255, 255, 0))
    picture.paste((255, 255, 255, 255), (10, 10, 18, 18))
    tensor = to_model_input(picture, 28, 1)[0, 0]
    assert tensor[0, 0] == -1.0 and tensor[14, 14] == 1.0


def test_sixteen_bit_images_use_their_full_range():
    ramp = (np.arange(28 * 28, dtype=np.uint16).reshape(28, 28) * 80).astype(np.uint16)
    picture = open_image(_encoded(Image.fromarray(ramp)))
    assert picture.mode == "I;16"
    tensor = to_model_input(picture, 28, 1)
    assert tensor.min() == -1.0 and tensor.max() == 1.0  # not all white after clipping


def test_cmyk_jpeg_from_bytes_is_converted():
    data = _encoded(Image.new("CMYK", (32, 32), (0, 0, 0, 255)), "JPEG")
    tensor = load_image(data, 28, 3)
    assert tensor.shape == (1, 3, 28, 28) and tensor.max() < -0.8  # full black ink: dark


def test_float_images_use_their_full_range():
    ramp = np.linspace(0.0, 1.0, 28 * 28, dtype=np.float32).reshape(28, 28)
    picture = open_image(_encoded(Image.fromarray(ramp, mode="F"), "TIFF"))
    assert picture.mode == "F"
    tensor = to_model_input(picture, 28, 1)
    assert tensor.min() == -1.0 and tensor.max() == 1.0  # not all black (0..1 of 255)


@pytest.mark.parametrize("mode", ["LAB", "La"])
def test_modes_pil_cannot_convert_are_a_clear_error(mode):
    with pytest.raises(ImageInputError, match=f"unsupported image mode {mode}"):
        to_model_input(Image.new(mode, (28, 28)), 28, 1)


def test_exif_orientation_is_applied():
    picture = Image.new("L", (40, 20), 0)
    picture.paste(255, (0, 0, 10, 20))  # white band on the left of a landscape picture
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    data = _encoded(picture, "JPEG", exif=exif.tobytes(), quality=95)
    tensor = load_image(data, 28, 1)[0, 0]
    # Shown upright, the picture is portrait with the band at the top.
    assert tensor[:5].mean() > 0.5 and tensor[-5:].mean() < -0.5


def test_multi_frame_gif_uses_the_first_frame():
    frames = [Image.new("L", (28, 28), value) for value in (0, 255)]
    data = _encoded(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert load_image(data, 28, 1).max() == -1.0


# --- one grid layout: tile (the app) and image_grid (figures) -----------------------------------
def _ramp(n: int, channels: int = 1) -> torch.Tensor:
    """n images of 3×2 pixels in [-1, 1], image i all of the uint8 value 10·i."""
    from fashiongan.pixels import from_uint8

    values = from_uint8(torch.arange(n, dtype=torch.uint8) * 10)
    return values.view(n, 1, 1, 1).expand(n, channels, 3, 2).clone()


def test_tile_lays_images_row_by_row_on_white():
    from fashiongan.images import tile

    canvas = tile(_ramp(5), ncols=3, pad=1)  # 2 rows of 3 (the last row has 2)
    assert canvas.shape == (2 * (3 + 1) + 1, 3 * (2 + 1) + 1, 1) and canvas.dtype == np.uint8
    for i in range(5):
        top, left = 1 + (i // 3) * 4, 1 + (i % 3) * 3
        assert (canvas[top : top + 3, left : left + 2] == 10 * i).all()
    assert (canvas[0] == 255).all() and (canvas[:, 0] == 255).all()  # the white border
    assert (canvas[5:8, 7:9] == 255).all()  # the empty sixth cell
    assert tile(_ramp(2), ncols=8).shape[1] == 2 * (2 + 2) + 2  # never wider than the images


def test_to_picture_enlarges_with_hard_edges_in_l_or_rgb():
    from fashiongan.images import tile, to_picture

    grey = to_picture(tile(_ramp(2), ncols=2), scale=4)
    assert grey.mode == "L" and grey.size == (4 * 10, 4 * 7)
    assert np.asarray(grey)[8:20, 8:16].tolist() == [[0] * 8] * 12  # one source pixel → 4×4
    colour = to_picture(tile(_ramp(3, channels=3), ncols=3), scale=1)
    assert colour.mode == "RGB" and colour.size == (14, 7)


def test_image_grid_draws_the_tile_in_one_panel_with_row_labels():
    from fashiongan.plotting import image_grid

    figure = image_grid(_ramp(6), ncols=3, row_labels=["first", "second"], title="two rows")
    (axes,) = figure.axes
    assert axes.get_images()[0].get_array().shape == (2 * (3 + 4) + 4, 3 * (2 + 4) + 4)
    assert [label.get_text() for label in axes.get_yticklabels()] == ["first", "second"]
    assert axes.get_yticks().tolist() == [4 + 1.5, 4 + 7 + 1.5]  # the middle of each row
    assert figure._suptitle.get_text() == "two rows"
