import gzip
from pathlib import Path

import pytest
from kedro.io import DatasetError

from fashiongan.datasets.fashion_mnist import (
    FASHION_MNIST_SHA256,
    ChecksumError,
    FashionMNISTRawDataset,
)


def test_loads_verified_bytes(tiny_raw):
    folder, checksums = tiny_raw
    data = FashionMNISTRawDataset(path=str(folder), fetch=False, checksums=checksums).load()
    assert set(data) == set(checksums)
    assert data["train-labels-idx1-ubyte"][:4] == b"\x00\x00\x08\x01"


def test_checksum_mismatch_names_file_and_expected_sum(tiny_raw):
    folder, checksums = tiny_raw
    wrong = dict(checksums, **{"t10k-labels-idx1-ubyte": "0" * 64})
    with pytest.raises(ChecksumError, match=r"t10k-labels-idx1-ubyte\.gz.*expected 0{64}"):
        FashionMNISTRawDataset(path=str(folder), fetch=False, checksums=wrong).load()


def test_truncated_file_is_a_clear_error(tiny_raw):
    folder, checksums = tiny_raw
    target = folder / "train-images-idx3-ubyte.gz"
    target.write_bytes(target.read_bytes()[:100])
    with pytest.raises(ChecksumError, match=r"train-images-idx3-ubyte\.gz is truncated.*expected"):
        FashionMNISTRawDataset(path=str(folder), fetch=False, checksums=checksums).load()


def test_missing_files_without_fetch(tmp_path: Path):
    with pytest.raises(DatasetError, match="Missing raw files"):
        FashionMNISTRawDataset(path=str(tmp_path), fetch=False).load()


def test_fetch_falls_back_to_debian_when_mirror_unreachable(tmp_path: Path, monkeypatch, tiny_raw):
    """Official mirror fails → Debian fallback is asked for exactly the missing files."""
    source, checksums = tiny_raw
    calls = []

    def fake_debian(folder: Path, names: list[str], package: str = "") -> None:
        calls.append(sorted(names))
        for name in names:
            (folder / f"{name}.gz").write_bytes((source / f"{name}.gz").read_bytes())

    monkeypatch.setattr("fashiongan.datasets.fashion_mnist.fetch_debian", fake_debian)
    target = tmp_path / "fetched"
    dataset = FashionMNISTRawDataset(
        path=str(target), base_url="http://127.0.0.1:9/", timeout=1, checksums=checksums
    )
    data = dataset.load()
    assert calls == [sorted(checksums)]
    assert len(data) == 4
    assert not list(target.glob(".*.tmp")), "no partial files are left behind"


def test_official_checksums_are_the_published_files():
    # MD5s of the decompressed files agree with torchvision's table; here only shape of the constants.
    assert set(FASHION_MNIST_SHA256) == {
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    }
    assert all(len(v) == 64 for v in FASHION_MNIST_SHA256.values())


def test_gzip_roundtrip_of_fixture(tiny_raw):
    folder, _ = tiny_raw
    assert (
        gzip.decompress((folder / "t10k-labels-idx1-ubyte.gz").read_bytes())[:4]
        == b"\x00\x00\x08\x01"
    )
