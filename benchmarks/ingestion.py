"""Ingestion + preprocessing time for all 70k Fashion-MNIST images (not a test).

Measures, on the raw files already in data/01_raw/fashion-mnist (run `make data` once first):
verification (gunzip + SHA-256), idx parsing, the stratified split and scaling to [-1, 1], and
loading the processed safetensors file back (what training pays at start-up).

    python benchmarks/ingestion.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _common import save, time_median
from fashiongan.datasets import FashionMNISTRawDataset, TensorDictDataset
from fashiongan.pipelines.data_processing.nodes import (
    build_model_input,
    parse_fashion_mnist,
    split_train_validation,
)

CLASSES = tuple(str(i) for i in range(10))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--raw", default="data/01_raw/fashion-mnist")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    raw_dataset = FashionMNISTRawDataset(path=args.raw, fetch=False)
    raw = raw_dataset.load()
    parsed = parse_fashion_mnist(raw, CLASSES)
    split = split_train_validation(parsed, 0.1, 42)
    model_input = build_model_input(parsed, split)
    n_images = len(parsed["train_labels"]) + len(parsed["test_labels"])

    with tempfile.TemporaryDirectory() as tmp:
        out = TensorDictDataset(filepath=str(Path(tmp) / "model_input.safetensors"))
        out.save(model_input)
        stages = {
            "verify_raw_sha256": time_median(raw_dataset.load, args.repeats),
            "parse_idx": time_median(lambda: parse_fashion_mnist(raw, CLASSES), args.repeats),
            "split_and_scale": time_median(
                lambda: build_model_input(parsed, split_train_validation(parsed, 0.1, 42)),
                args.repeats,
            ),
            "save_safetensors": time_median(lambda: out.save(model_input), args.repeats),
            "load_safetensors": time_median(out.load, args.repeats),
        }
    total = sum(stage["median_s"] for stage in stages.values())
    save(
        "ingestion",
        {
            "images": n_images,
            "stages": stages,
            "total_median_s": total,
            "images_per_s": n_images / total,
        },
    )


if __name__ == "__main__":
    main()
