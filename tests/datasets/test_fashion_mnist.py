import gzip
import hashlib
import re
from pathlib import Path

import pytest
from kedro.io import DatasetError

from fashiongan.datasets.fashion_mnist import (
    FASHION_MNIST_SHA256,
    ChecksumError,
    FashionMNISTRawDataset,
)
from tests.conftest import REPO_ROOT


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


#: MD5s of the *decompressed* official files, as published beside the download links' .gz MD5s
#: (zalandoresearch/fashion-mnist's files; the same table in torchvision-based loaders' ``raw_data``).
PUBLISHED_DECOMPRESSED_MD5 = {
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}
#: The SHA-256s of those same decompressed bytes (checked against the MD5s above by
#: ``test_real_raw_files_match_the_published_digests`` wherever the real files are present).
OFFICIAL_DECOMPRESSED_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
REAL_RAW = REPO_ROOT / "data" / "01_raw" / "fashion-mnist"


def readme_checksum_table() -> dict[str, str]:
    """The README's "SHA-256 of the decompressed bytes" table as ``{file: sha256}``."""
    rows = re.findall(
        r"^\| ([a-z0-9-]+-idx[13]-ubyte) \| `([0-9a-f]{64})` \|$",
        (REPO_ROOT / "README.md").read_text(encoding="utf-8"),
        flags=re.MULTILINE,
    )
    return dict(rows)


def test_official_checksums_are_the_published_files():
    """The code's table is the official files' digests, and the README shows that same table."""
    assert FASHION_MNIST_SHA256 == OFFICIAL_DECOMPRESSED_SHA256
    assert readme_checksum_table() == OFFICIAL_DECOMPRESSED_SHA256


def test_real_raw_files_match_the_published_digests():
    """On a machine with the real files: the loader accepts them and they are the published bytes.

    Ties the SHA-256 table to the publisher's MD5s (the .gz bytes themselves may be Debian's
    recompression, so only the decompressed bytes are compared).
    """
    if not all((REAL_RAW / f"{name}.gz").is_file() for name in FASHION_MNIST_SHA256):
        pytest.skip(
            f"the real Fashion-MNIST files are not in {REAL_RAW} (`make data` fetches them)"
        )
    data = FashionMNISTRawDataset(path=str(REAL_RAW), fetch=False).load()
    assert {name: hashlib.md5(raw).hexdigest() for name, raw in data.items()} == (
        PUBLISHED_DECOMPRESSED_MD5
    )
    assert {name: hashlib.sha256(raw).hexdigest() for name, raw in data.items()} == (
        OFFICIAL_DECOMPRESSED_SHA256
    )
    assert len(data["train-images-idx3-ubyte"]) == 16 + 60_000 * 28 * 28
    assert len(data["t10k-labels-idx1-ubyte"]) == 8 + 10_000


def test_gzip_roundtrip_of_fixture(tiny_raw):
    folder, _ = tiny_raw
    assert (
        gzip.decompress((folder / "t10k-labels-idx1-ubyte.gz").read_bytes())[:4]
        == b"\x00\x00\x08\x01"
    )
