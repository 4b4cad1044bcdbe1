import numpy as np
import pytest
from kedro.io import DatasetError

from fashiongan.datasets import FaissIndexDataset
from fashiongan.search.index import IndexSettings, build_index, describe, search


def _unit(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_dataset_round_trip_keeps_results_and_settings(tmp_path):
    vectors = _unit(500, dim=8)
    index = build_index(vectors, IndexSettings(kind="ivf", nlist=10, nprobe=3))
    dataset = FaissIndexDataset(filepath=str(tmp_path / "sub" / "index.faiss"))
    assert not dataset.exists()
    dataset.save(index)
    loaded = dataset.load()
    assert (
        describe(loaded)
        == describe(index)
        == {"ntotal": 500, "dim": 8, "kind": "ivf", "nlist": 10, "nprobe": 3}
    )
    np.testing.assert_array_equal(
        search(loaded, vectors[:4], 5)[1], search(index, vectors[:4], 5)[1]
    )


def test_missing_or_corrupt_file_says_what_to_do(tmp_path):
    with pytest.raises(DatasetError, match="kedro run --pipelines=search_index"):
        FaissIndexDataset(filepath=str(tmp_path / "none.faiss")).load()
    (tmp_path / "bad.faiss").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="not a readable faiss index"):
        FaissIndexDataset(filepath=str(tmp_path / "bad.faiss")).load()
