"""Nearest-neighbour index over catalog embeddings (faiss, inner product on unit vectors).

Small catalogs get an exact ``IndexFlatIP``; above ``exact_max`` vectors an approximate index
is built: IVF (inverted lists over k-means cells, ``nprobe`` cells searched per query) or
HNSW (a navigable small-world graph). Scores are cosine similarities because both the
catalog vectors and the queries are unit vectors. The index file is
:class:`fashiongan.datasets.FaissIndexDataset`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np

KINDS = ("auto", "flat", "ivf", "hnsw")


@dataclass(frozen=True)
class IndexSettings:
    kind: str = "auto"  # auto | flat | ivf | hnsw
    exact_max: int = 100_000  # auto: exact search up to this many vectors
    large_kind: str = "ivf"  # auto: what to build above exact_max (ivf | hnsw)
    nlist: int | None = None  # IVF cells; None = sqrt(N)
    nprobe: int = 16  # IVF cells searched per query
    train_per_cell: int = 64  # IVF k-means training sample: nlist * this many vectors
    hnsw_m: int = 32  # HNSW neighbours per node
    ef_construction: int = 80
    ef_search: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"index kind must be one of {KINDS}, got {self.kind!r}")
        if self.large_kind not in ("ivf", "hnsw"):
            raise ValueError(f"large_kind must be 'ivf' or 'hnsw', got {self.large_kind!r}")
        if self.exact_max < 0 or self.nprobe < 1 or self.hnsw_m < 2 or self.ef_search < 1:
            raise ValueError(f"invalid index settings: {self}")

    def resolve_kind(self, n: int) -> str:
        """The index type built for ``n`` vectors."""
        if self.kind != "auto":
            return self.kind
        return "flat" if n <= self.exact_max else self.large_kind


def check_vectors(vectors: np.ndarray | Any, name: str = "vectors") -> np.ndarray:
    """(N, d) float32 C-contiguous finite array, or a one-line ValueError."""
    array = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    if array.ndim != 2 or array.shape[1] < 1:
        raise ValueError(f"{name} must be 2-D (N, dim), got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contain NaN or infinite values")
    return array


def build_index(vectors: np.ndarray, settings: IndexSettings | None = None) -> faiss.Index:
    """An inner-product index holding ``vectors``; row i of ``vectors`` has id i."""
    settings = settings or IndexSettings()
    vectors = check_vectors(vectors)
    n, dim = vectors.shape
    if n == 0:
        raise ValueError("cannot index an empty catalog")
    kind = settings.resolve_kind(n)
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = settings.ef_construction
        index.hnsw.efSearch = settings.ef_search
    else:
        nlist = settings.nlist or max(1, int(math.sqrt(n)))
        nlist = min(nlist, n)
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(settings.seed)
        n_train = min(n, nlist * settings.train_per_cell)
        sample = vectors[np.sort(rng.choice(n, n_train, replace=False))] if n_train < n else vectors
        index.cp.seed = settings.seed
        index.cp.min_points_per_centroid = 1  # small training samples are deliberate: no warning
        index.train(sample)
        index.nprobe = min(settings.nprobe, nlist)
    index.add(vectors)
    return index


def describe(index: faiss.Index) -> dict[str, Any]:
    """Kind, size and search settings of an index, JSON-able."""
    info: dict[str, Any] = {"ntotal": int(index.ntotal), "dim": int(index.d)}
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        info.update(kind="ivf", nlist=int(ivf.nlist), nprobe=int(ivf.nprobe))
    elif isinstance(index, faiss.IndexHNSW):
        info.update(kind="hnsw", m=int(index.hnsw.nb_neighbors(1)), ef_search=index.hnsw.efSearch)
    else:
        info["kind"] = "flat"
    return info


def search(index: faiss.Index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` rows per query, best first.

    Returns:
        ``scores`` (Q, k') float32 cosine similarities and ``rows`` (Q, k') int64 with
        ``k' = min(k, ntotal)``; approximate indexes may return fewer hits, marked row -1.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    queries = check_vectors(queries, "queries")
    if queries.shape[1] != index.d:
        raise ValueError(f"queries have dim {queries.shape[1]}, the index holds dim {index.d}")
    scores, rows = index.search(queries, min(k, int(index.ntotal)))
    return scores, rows


def timed_build(
    vectors: np.ndarray, settings: IndexSettings | None = None
) -> tuple[faiss.Index, float]:
    """:func:`build_index` and its wall time in seconds."""
    started = time.perf_counter()
    index = build_index(vectors, settings)
    return index, time.perf_counter() - started


def stored_vectors(index: faiss.Index) -> np.ndarray:
    """(ntotal, d) float32: the vectors the index holds, row i = id i (flat, IVF or HNSW)."""
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        ivf.make_direct_map()
    return index.reconstruct_n(0, int(index.ntotal))
