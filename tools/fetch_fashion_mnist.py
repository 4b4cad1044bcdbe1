"""Make sure the real Fashion-MNIST is in a folder, verified, without running `make data`.

Reuses the files already there, or copies them from a cache folder outside the clone, or
fetches them (official URLs, then Debian's package: ``FashionMNISTRawDataset``); every file is
checked by the SHA-256 of its decompressed bytes, then the verified files are copied to the
cache. ``make test`` runs it so the real-data test has its files.

Usage: python tools/fetch_fashion_mnist.py data/01_raw/fashion-mnist --cache ~/.cache/...
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from kedro.io import DatasetError

from fashiongan.datasets.fashion_mnist import FASHION_MNIST_SHA256, FashionMNISTRawDataset


def copy_missing(source: Path, target: Path) -> list[str]:
    """Copy each ``<name>.gz`` that ``source`` has and ``target`` lacks; return the names."""
    copied = []
    for name in FASHION_MNIST_SHA256:
        have, want = source / f"{name}.gz", target / f"{name}.gz"
        if have.is_file() and not want.is_file():
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(have, want)
            copied.append(name)
    return copied


def main(argv: list[str] | None = None) -> int:
    """Fetch or reuse, verify, cache; one line either way, exit 1 when the files cannot be had."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--cache", type=Path, required=True)
    args = parser.parse_args(argv)
    from_cache = copy_missing(args.cache, args.folder)
    try:
        FashionMNISTRawDataset(path=str(args.folder), fetch=True).load()
    except DatasetError as err:
        print(f"Error: the real Fashion-MNIST cannot be had: {err}", file=sys.stderr)
        return 1
    copy_missing(args.folder, args.cache)
    source = f"{len(from_cache)} from {args.cache}, " if from_cache else ""
    print(f"Fashion-MNIST in {args.folder} ({source}SHA-256 of every file verified)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
