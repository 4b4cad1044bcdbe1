from pathlib import Path

import pytest
import torch
from kedro.io import DatasetError
from safetensors.torch import safe_open, save_file

from fashiongan.datasets import TensorDictDataset, TorchModelDataset
from fashiongan.models.mlp_gan import MLPGenerator
from tests.model_configs import conditional_config, mlp_config


def test_tensor_dict_roundtrip(tmp_path: Path):
    data = {"a": torch.arange(6).view(2, 3), "b": torch.rand(4)}
    dataset = TensorDictDataset(filepath=str(tmp_path / "x.safetensors"))
    dataset.save(data)
    loaded = dataset.load()
    assert torch.equal(loaded["a"], data["a"]) and torch.equal(loaded["b"], data["b"])


def test_model_roundtrip_rebuilds_an_equal_generator(tmp_path: Path):
    torch.manual_seed(0)
    generator = MLPGenerator(mlp_config(generator_hidden=(8, 16, 32))).eval()
    dataset = TorchModelDataset(filepath=str(tmp_path / "g.safetensors"))
    dataset.save(generator)
    loaded = dataset.load()
    assert isinstance(loaded, MLPGenerator) and loaded.config == generator.config
    z = torch.randn(3, 100)
    assert torch.equal(loaded(z), generator(z))


def test_corrupt_file_is_a_clear_error(tmp_path: Path):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(b"not a safetensors file")
    with pytest.raises(DatasetError, match="bad.safetensors"):
        TensorDictDataset(filepath=str(path)).load()
    with pytest.raises(DatasetError, match="bad.safetensors"):
        TorchModelDataset(filepath=str(path)).load()


def test_read_only_directory_keeps_previous_artifact(tmp_path: Path, monkeypatch):
    """A directory that refuses new files (read-only; root ignores chmod, so it is simulated)."""
    dataset = TensorDictDataset(filepath=str(tmp_path / "out" / "x.safetensors"))
    dataset.save({"a": torch.zeros(2)})

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Read-only file system")

    monkeypatch.setattr("tempfile.mkstemp", read_only)
    with pytest.raises(DatasetError, match=r"could not write .*x.safetensors: Read-only"):
        dataset.save({"a": torch.ones(2)})
    monkeypatch.undo()
    assert torch.equal(dataset.load()["a"], torch.zeros(2))


def test_failed_save_keeps_previous_artifact(tmp_path: Path, monkeypatch):
    """A save that dies mid-write (disk full) leaves the old file and no temp file."""
    dataset = TensorDictDataset(filepath=str(tmp_path / "x.safetensors"))
    dataset.save({"a": torch.zeros(2)})

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("fashiongan.datasets.safetensors.save_file", disk_full)
    with pytest.raises(DatasetError, match=r"could not write .*x.safetensors: No space left"):
        dataset.save({"a": torch.ones(2)})
    monkeypatch.undo()
    assert torch.equal(dataset.load()["a"], torch.zeros(2))
    assert [p.name for p in tmp_path.iterdir()] == ["x.safetensors"]


def test_paths_beside_the_model_resolve_against_its_folder(tmp_path: Path):
    """A generator naming ``./text_encoder`` finds the encoder saved next to it, wherever it is."""
    from fashiongan.models.conditional_gan import (
        BESIDE_MODEL_TEXT_ENCODER,
        ConditionalGenerator,
    )

    small = {"g_channels": 4, "text_channels": 2, "noise_channels": 2, "noise_dim": 4}
    beside = ConditionalGenerator(
        conditional_config(
            text_code_dim=0, minibatch_std=False, **small, text_encoder=BESIDE_MODEL_TEXT_ENCODER
        )
    )
    TorchModelDataset(filepath=str(tmp_path / "a" / "generator.safetensors")).save(beside)
    (tmp_path / "a").rename(tmp_path / "moved")
    loaded = TorchModelDataset(filepath=str(tmp_path / "moved" / "generator.safetensors")).load()
    assert loaded.config.text_encoder == str(tmp_path / "moved" / "text_encoder")
    named = ConditionalGenerator(
        conditional_config(
            text_code_dim=0, minibatch_std=False, **small, text_encoder="bert-base-uncased"
        )
    )
    TorchModelDataset(filepath=str(tmp_path / "b.safetensors")).save(named)
    assert TorchModelDataset(
        filepath=str(tmp_path / "b.safetensors")
    ).load().config.text_encoder == ("bert-base-uncased")


def flip_last_byte(path: Path) -> None:
    """Change one byte of the last tensor's data (the header stays valid): a silent corruption."""
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_tensor_file_changed_after_it_was_written_is_refused(tmp_path: Path):
    path = tmp_path / "x.safetensors"
    dataset = TensorDictDataset(filepath=str(path), contract={"tensors": {}, "remedy": "redo it"})
    dataset.save({"a": torch.arange(6).view(2, 3), "b": torch.rand(4)})
    assert safe_open(str(path), framework="pt").metadata()["tensors_sha256"]
    flip_last_byte(path)
    with pytest.raises(DatasetError) as err:
        dataset.load()
    assert str(err.value) == f"{path} changed since it was written (SHA-256 mismatch): redo it"


def test_a_file_written_before_digests_still_loads(tmp_path: Path):
    path = tmp_path / "old.safetensors"
    save_file({"a": torch.arange(3)}, str(path))  # no metadata at all, as before the digest
    assert torch.equal(TensorDictDataset(filepath=str(path)).load()["a"], torch.arange(3))


def test_a_model_changed_after_it_was_written_is_refused(tmp_path: Path):
    path = tmp_path / "g.safetensors"
    TorchModelDataset(filepath=str(path)).save(MLPGenerator(mlp_config(generator_hidden=(8,))))
    flip_last_byte(path)
    with pytest.raises(DatasetError, match=r"g.safetensors changed since it was written \(SHA-256"):
        TorchModelDataset(filepath=str(path)).load()
