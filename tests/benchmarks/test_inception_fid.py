"""The pure helpers of benchmarks/inception_fid.py: model specs, cache keys, resumable chunks."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCHMARKS))  # the script imports its sibling _common
    try:
        yield importlib.import_module("inception_fid")
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_model_spec_resolves_a_folder_and_refuses_bad_specs(bench, tmp_path):
    (tmp_path / "generator.safetensors").write_bytes(b"x")
    assert bench.model_file(f"cond={tmp_path}") == ("cond", tmp_path / "generator.safetensors")
    with pytest.raises(ValueError, match="NAME=PATH"):
        bench.model_file("no-equals-sign")
    with pytest.raises(FileNotFoundError, match="no generator"):
        bench.model_file(f"x={tmp_path / 'missing'}")


def test_tensor_digest_changes_with_values_and_shape(bench):
    x = torch.zeros(4, 1, 2, 2)
    assert bench.tensor_sha256(x) == bench.tensor_sha256(x.clone())
    assert bench.tensor_sha256(x) != bench.tensor_sha256(x.reshape(2, 2, 2, 2))
    y = x.clone()
    y[0, 0, 0, 0] = 1
    assert bench.tensor_sha256(x) != bench.tensor_sha256(y)


def test_chunked_features_resume_only_the_missing_chunks(bench, tmp_path):
    calls = []

    def extractor(images):  # (B, 1, 2, 2) → (B, 4)
        calls.append(len(images))
        return images.flatten(1)

    images = torch.randn(10, 1, 2, 2)
    first, stats = bench.chunked_features(extractor, images, tmp_path, chunk=4, batch_size=2)
    assert stats["new_images"] == 10 and torch.allclose(first, images.flatten(1).double())
    (tmp_path / "features_000004_4.safetensors").unlink()  # as if killed mid-run
    calls.clear()
    again, stats = bench.chunked_features(extractor, images, tmp_path, chunk=4, batch_size=2)
    assert stats["new_images"] == 4 and calls == [2, 2]
    assert torch.equal(first, again)


def test_results_keep_what_this_checkout_cannot_recompute(bench, tmp_path, monkeypatch):
    """No evaluation report here: the last report's N = 200 figures stay; all-cached timings too."""
    monkeypatch.setattr(bench, "EVALUATION_METRICS", tmp_path / "absent.json")
    path = tmp_path / "results.json"
    timing = {"n": 10, "images_per_s": 7.0, "wall_s": 1.4, "new_images": 10, "cache": "c"}
    path.write_text(json.dumps({"project_n200": {"fid": {"floor": 64.5}}, "real_test": timing}))
    bench.update_results(path, "real_test", None, {**timing, "new_images": 0, "wall_s": 0.1})
    results = json.loads(path.read_text())
    assert results["project_n200"] == {"fid": {"floor": 64.5}}
    assert results["real_test"]["wall_s"] == 1.4 and results["real_test"]["new_images"] == 10
