import numpy as np
import pytest

from fashiongan.search.index import IndexSettings, build_index, describe, search


def _unit(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_exact_index_finds_each_vector_first_with_cosine_one():
    vectors = _unit(200)
    index = build_index(vectors)
    assert describe(index)["kind"] == "flat"
    scores, rows = search(index, vectors[:5], k=3)
    assert rows[:, 0].tolist() == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)
    assert (np.diff(scores, axis=1) <= 1e-6).all()  # best first


def test_auto_switches_to_approximate_above_exact_max_with_good_recall():
    vectors = _unit(3000, dim=8)
    queries = _unit(50, dim=8, seed=1)
    exact = build_index(vectors)
    ivf = build_index(vectors, IndexSettings(exact_max=1000, nprobe=8))
    hnsw = build_index(vectors, IndexSettings(exact_max=1000, large_kind="hnsw"))
    assert describe(ivf)["kind"] == "ivf" and describe(ivf)["nlist"] == 54
    assert describe(hnsw)["kind"] == "hnsw"
    _, truth = search(exact, queries, 10)
    for index in (ivf, hnsw):
        _, found = search(index, queries, 10)
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth, strict=True)])
        assert recall > 0.8


def test_k_larger_than_the_catalog_returns_every_item():
    index = build_index(_unit(4))
    scores, rows = search(index, _unit(1, seed=2), k=10)
    assert sorted(rows[0].tolist()) == [0, 1, 2, 3] and scores.shape == (1, 4)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: build_index(np.zeros((0, 4), np.float32)), "empty catalog"),
        (lambda: build_index(np.full((2, 4), np.nan, np.float32)), "NaN"),
        (lambda: build_index(np.zeros(4, np.float32)), "2-D"),
        (lambda: search(build_index(_unit(3)), _unit(1, dim=4), 1), "dim 4"),
        (lambda: search(build_index(_unit(3)), _unit(1), 0), "k must be"),
        (lambda: IndexSettings(kind="lsh"), "index kind"),
    ],
)
def test_bad_input_is_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_index_parameters_refuse_a_misspelt_key_with_the_closest_name():
    from fashiongan.config import ConfigError, load_parameters, parse_block

    values = load_parameters()["search_index"].model_dump()
    values["index"]["nprobes"] = 3
    with pytest.raises(
        ConfigError, match=r"search_index\.index\.nprobes: unknown key; did you mean `nprobe`"
    ):
        parse_block("search_index", values)
