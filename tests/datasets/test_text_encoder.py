"""The text encoder trained beside the conditional GAN, saved as a Hugging Face folder."""

from pathlib import Path

import pytest
import torch
from kedro.io import DatasetError

from fashiongan.datasets import TextEncoderDataset
from tests.model_configs import text_encoder_params


@pytest.fixture(scope="module")
def encoder():
    from fashiongan.text.encoder import TextEncoder

    return TextEncoder.from_params(text_encoder_params(pooling="cls"), device="cpu")


def test_roundtrip_keeps_weights_and_pooling(encoder, tmp_path: Path):
    dataset = TextEncoderDataset(filepath=str(tmp_path / "models" / "text_encoder"))
    assert not dataset.exists()
    (tmp_path / "models" / ".text_encoder.killed").mkdir(parents=True)  # an interrupted save
    dataset.save(encoder)
    assert dataset.exists()
    loaded = dataset.load()
    assert loaded.pooling == "cls"
    texts = ["a dark coat", "light trousers"]
    torch.testing.assert_close(loaded.encode(texts), encoder.encode(texts), atol=1e-6, rtol=0)
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["text_encoder"]
    weights = tmp_path / "models" / "text_encoder" / "model.safetensors"
    assert weights.stat().st_mode & 0o044  # readable by others, like the other models


def test_failed_save_keeps_the_previous_encoder(encoder, tmp_path: Path, monkeypatch):
    """Disk full halfway through the new folder: the old one stays whole, no staging is left."""
    dataset = TextEncoderDataset(filepath=str(tmp_path / "text_encoder"))
    dataset.save(encoder)
    before = (tmp_path / "text_encoder" / "model.safetensors").read_bytes()

    def disk_full(self, folder):
        (Path(folder) / "config.json").write_text("{")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(type(encoder), "save", disk_full)
    with pytest.raises(DatasetError, match="could not write .*text_encoder.*No space left"):
        dataset.save(encoder)
    monkeypatch.undo()
    assert (tmp_path / "text_encoder" / "model.safetensors").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["text_encoder"]
    assert dataset.load().pooling == "cls"


def test_missing_or_foreign_folder_is_a_clear_error(tmp_path: Path):
    with pytest.raises(DatasetError, match="does not exist: train the conditional GAN first"):
        TextEncoderDataset(filepath=str(tmp_path / "nothing")).load()
    (tmp_path / "other").mkdir()
    with pytest.raises(DatasetError, match="not a readable text encoder"):
        TextEncoderDataset(filepath=str(tmp_path / "other")).load()


def test_inference_reloads_an_encoder_saved_again(encoder, tmp_path: Path):
    """A new training run rewrites the folder: a long-running process must not keep the old one."""
    import os

    from fashiongan.generation import text_encoder

    dataset = TextEncoderDataset(filepath=str(tmp_path / "text_encoder"))
    dataset.save(encoder)
    first = text_encoder(str(tmp_path / "text_encoder"), "cls")
    assert text_encoder(str(tmp_path / "text_encoder"), "cls") is first  # cached
    dataset.save(encoder)
    settings = tmp_path / "text_encoder" / "fashiongan_text_encoder.json"
    os.utime(settings, ns=(settings.stat().st_atime_ns, settings.stat().st_mtime_ns + 10**9))
    assert text_encoder(str(tmp_path / "text_encoder"), "cls") is not first
