"""Raw Fashion-MNIST: find the four idx files, fetch them if missing, verify every byte.

Order: the local folder; the official download URLs; Debian's ``dataset-fashion-mnist`` package
archive (same bytes, recompressed). Each file is checked by the SHA-256 of its *decompressed*
bytes, so the official and the Debian copies verify alike.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import Any

from kedro.io import DatasetError

from fashiongan.datasets.atomic import atomic_path
from fashiongan.datasets.base import FileDataset

logger = logging.getLogger(__name__)

#: SHA-256 of the decompressed official files (their MD5s match the publisher's table).
FASHION_MNIST_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
OFFICIAL_BASE_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
DEBIAN_PACKAGE = "dataset-fashion-mnist"
DEBIAN_DATA_DIR = "usr/share/datasets/fashion-mnist"


class ChecksumError(DatasetError):
    """A raw file's decompressed bytes do not match the expected SHA-256."""


def read_verified(path: Path, expected_sha256: str) -> bytes:
    """Decompress ``path`` and check its SHA-256.

    Raises:
        ChecksumError: naming the file and the expected checksum, for a truncated, corrupt or
            different file.
    """
    raw = path.read_bytes()
    if not raw:
        raise ChecksumError(
            f"{path} is empty; expected a gzip file whose decompressed SHA-256 is "
            f"{expected_sha256}. Delete it and run `make data` again to re-fetch."
        )
    try:
        data = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise ChecksumError(
            f"{path} is truncated or not gzip ({err}); expected decompressed SHA-256 "
            f"{expected_sha256}. Delete it and run `make data` again to re-fetch."
        ) from err
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_sha256:
        raise ChecksumError(
            f"{path}: decompressed SHA-256 is {actual}, expected {expected_sha256}. "
            "Delete it and run `make data` again to re-fetch."
        )
    return data


def _download(url: str, target: Path, timeout: float) -> None:
    with (
        urllib.request.urlopen(url, timeout=timeout) as response,
        atomic_path(target) as tmp,
        tmp.open("wb") as out,
    ):
        shutil.copyfileobj(response, out)


def fetch_official(folder: Path, names: list[str], base_url: str, timeout: float) -> None:
    """Download ``<name>.gz`` files from the official mirror into ``folder``."""
    for name in names:
        _download(f"{base_url}{name}.gz", folder / f"{name}.gz", timeout)


def fetch_debian(folder: Path, names: list[str], package: str = DEBIAN_PACKAGE) -> None:
    """Take the files from Debian's package archive (``apt-get download`` + ``dpkg-deb -x``)."""
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        files = ", ".join(f"{name}.gz" for name in names)
        raise DatasetError(
            f"{folder} lacks {files}: the official mirror could not be reached and the Debian "
            f"fallback needs apt-get and dpkg-deb, which this system lacks; download them from "
            f"{OFFICIAL_BASE_URL} and put them in {folder}/"
        )
    with tempfile.TemporaryDirectory() as work:
        result = subprocess.run(
            ["apt-get", "download", package], cwd=work, capture_output=True, text=True
        )
        debs = list(Path(work).glob(f"{package}_*.deb"))
        if result.returncode != 0 or not debs:
            raise DatasetError(
                f"`apt-get download {package}` failed: {result.stderr.strip()[-300:]}. "
                "If the package lists are empty, refresh them with `sudo apt-get update`."
            )
        extract = Path(work) / "x"
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(extract)], check=True)
        for name in names:
            source = extract / DEBIAN_DATA_DIR / f"{name}.gz"
            with atomic_path(folder / f"{name}.gz") as tmp:
                shutil.copyfile(source, tmp)


class FashionMNISTRawDataset(FileDataset[None, dict[str, bytes]]):
    """The four raw idx files as ``{name: decompressed bytes}``, verified by SHA-256.

    Args:
        path: folder holding ``<name>.gz`` (``data/01_raw/fashion-mnist``).
        fetch: fetch missing files (official URLs, then Debian); if False a missing file is an error.
        base_url: the official mirror.
        timeout: seconds to wait for the official mirror before falling back to Debian.
        checksums: ``{name: sha256}``; defaults to the official files'.
    """

    def __init__(
        self,
        path: str,
        fetch: bool = True,
        base_url: str = OFFICIAL_BASE_URL,
        timeout: float = 15.0,
        checksums: dict[str, str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(path, metadata)
        self._fetch = fetch
        self._base_url = base_url
        self._timeout = timeout
        self._checksums = dict(checksums or FASHION_MNIST_SHA256)

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._filepath), "fetch": self._fetch}

    def _exists(self) -> bool:
        return all((self.path / f"{n}.gz").is_file() for n in self._checksums)

    def save(self, data: None) -> None:
        raise DatasetError("FashionMNISTRawDataset is read-only.")

    def load(self) -> dict[str, bytes]:
        folder = self.path
        missing = [n for n in self._checksums if not (folder / f"{n}.gz").is_file()]
        if missing:
            if not self._fetch:
                raise DatasetError(f"Missing raw files in {folder}: {missing}")
            self._fetch_missing(folder, missing)
        return {
            name: read_verified(folder / f"{name}.gz", sha) for name, sha in self._checksums.items()
        }

    def _fetch_missing(self, folder: Path, missing: list[str]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        try:
            logger.info("Fetching %s from %s", missing, self._base_url)
            fetch_official(folder, missing, self._base_url, self._timeout)
            return
        except (urllib.error.URLError, OSError, TimeoutError) as err:
            logger.warning(
                "Official mirror unreachable (%s); trying Debian's %s.", err, DEBIAN_PACKAGE
            )
        still_missing = [n for n in missing if not (folder / f"{n}.gz").is_file()]
        fetch_debian(folder, still_missing)
