"""End-to-end search latency on CPU: text → intent → generated images → embedding → top-10.

Two catalogs:
  * the real one (the Fashion-MNIST test set, 10k items, exact index) as built by
    ``kedro run --pipelines=search_index`` with the trained conditional GAN and embedder;
  * 1M random unit vectors of the same size (index build time for exact and IVF, search-only
    latency and IVF recall@10 against exact search, then end-to-end latency on the IVF index).

Queries: half are catalog titles (the caption grammar's words: intent found by exact lookup),
half free-form shopper phrases (synonyms the grammar never uses: BERT reads their n-grams);
each is timed once after a warm-up, and both kinds are reported apart too.
Run from the project root after the search_index pipeline:

    python benchmarks/search_latency.py [--queries 200] [--million 1000000] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import random
import time

import numpy as np
import pandas as pd
import torch

from _common import save
from fashiongan.search.catalog import Catalog
from fashiongan.search.index import IndexSettings, describe, search, timed_build
from fashiongan.search.loading import load_service
from fashiongan.search.service import SearchService

#: Shopper phrases outside the caption grammar (also the load benchmark's queries).
FREE_FORM = [
    "black running trainers",
    "an oversized striped hoodie",
    "a purse",
    "a gown in a pale shade",
    "tennis shoes for jogging",
    "skinny jeans in navy",
    "a cosy cardigan",
    "a leather backpack",
    "flip flops for the beach",
    "a floral blouse",
    "a baggy sweatshirt",
    "a white tank top",
    "chelsea boots",
    "a relaxed fit parka",
    "a checked button-down",
    "cream coloured joggers",
    "a tote bag for work",
    "something warm for winter",
    "a charcoal blazer",
    "kids trainers",
    "a maxi dress with flowers",
    "a fitted black tee",
    "loose linen trousers",
    "grey hoodie",
    "suede ankle boots",
    "a little black dress",
    "a raincoat",
    "a clutch for the evening",
    "striped polo shirt",
    "hiking boots",
]


def query_set(titles: list[str], n: int, seed: int) -> list[tuple[str, str]]:
    """(kind, text): n/2 catalog titles and n/2 free-form phrases (cycled), interleaved."""
    rng = random.Random(seed)
    half = n // 2
    grammar = rng.sample(titles, min(n - half, len(titles)))
    free = [FREE_FORM[i % len(FREE_FORM)] for i in range(half)]
    mixed = [("catalog_title", t) for t in grammar] + [("free_form", t) for t in free]
    rng.shuffle(mixed)
    return mixed


def percentiles(values_ms: list[float]) -> dict[str, float]:
    array = np.asarray(values_ms)
    return {
        "p50_ms": round(float(np.percentile(array, 50)), 2),
        "p95_ms": round(float(np.percentile(array, 95)), 2),
        "mean_ms": round(float(array.mean()), 2),
        "n": len(array),
    }


def run_queries(service: SearchService, queries: list[tuple[str, str]], k: int) -> dict:
    """Wall time per query (all, and per kind) and the median of each stage."""
    for _, text in queries[:5]:  # warm-up: first calls allocate
        service.search(text, k=k)
    walls: dict[str, list[float]] = {}
    stages: dict[str, list[float]] = {}
    for kind, text in queries:
        started = time.perf_counter()
        result = service.search(text, k=k)
        wall = (time.perf_counter() - started) * 1000
        walls.setdefault("all", []).append(wall)
        walls.setdefault(kind, []).append(wall)
        for stage, ms in result.timings_ms.items():
            stages.setdefault(stage, []).append(ms)
    return {
        "end_to_end": percentiles(walls.pop("all")),
        "by_query_kind": {kind: percentiles(v) for kind, v in sorted(walls.items())},
        "stage_median_ms": {s: round(float(np.median(v)), 2) for s, v in stages.items()},
    }


def search_only(index, query_vectors: np.ndarray, k: int) -> dict[str, float]:
    """faiss search time alone, one query at a time (as the service does)."""
    times = []
    for query in query_vectors:
        started = time.perf_counter()
        search(index, query[None], k)
        times.append((time.perf_counter() - started) * 1000)
    return percentiles(times)


def recall(index, exact_index, query_vectors: np.ndarray, k: int) -> float:
    """Share of the exact top-k that ``index`` also returns."""
    _, exact = search(exact_index, query_vectors, k)
    _, found = search(index, query_vectors, k)
    hits = [len(set(a) & set(b)) / k for a, b in zip(found, exact, strict=True)]
    return round(float(np.mean(hits)), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--million", type=int, default=1_000_000, help="size of the big catalog")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (as the app)")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    service, _ = load_service("conf", models=["conditional"])
    titles = service.catalog.table["title"].drop_duplicates().tolist()
    queries = query_set(titles, args.queries, args.seed)
    small = {
        "items": len(service.catalog),
        "index": describe(service.ranker.index),
        "n_images_per_query": service.query.n_images,
        **run_queries(service, queries, args.k),
    }
    print("10k catalog:", small["end_to_end"])

    vectors_q = [service.path.embed(service.search(t).images) for _, t in queries[:100]]
    query_vectors = np.concatenate(vectors_q)
    # The real embeddings cluster by class: how much does IVF lose on them?
    real = service.ranker.catalog_vectors.numpy()
    small["ivf_recall_at_10_vs_exact"] = recall(
        timed_build(real, IndexSettings(kind="ivf"))[0], service.ranker.index, query_vectors, args.k
    )

    # --- 1M random unit vectors --------------------------------------------------------------
    dim = int(service.ranker.index.d)
    rng = np.random.default_rng(args.seed)
    vectors = rng.standard_normal((args.million, dim), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    big: dict[str, object] = {"items": args.million, "dim": dim}
    indexes = {}
    for kind in ("flat", "ivf"):
        index, build_s = timed_build(vectors, IndexSettings(kind=kind))
        indexes[kind] = index
        big[kind] = {
            "index": describe(index),
            "build_s": round(build_s, 2),
            "search_only": search_only(index, query_vectors, args.k),
        }
        print(f"1M {kind}:", big[kind])
    # Uniform random vectors have no clusters: IVF's worst case. Recall against cost:
    big["ivf"]["nprobe_sweep"] = []
    for nprobe in (16, 64, 256):
        indexes["ivf"].nprobe = nprobe
        big["ivf"]["nprobe_sweep"].append(
            {
                "nprobe": nprobe,
                "recall_at_10_vs_exact": recall(
                    indexes["ivf"], indexes["flat"], query_vectors, args.k
                ),
                "search_only": search_only(indexes["ivf"], query_vectors, args.k),
            }
        )
        print("1M ivf", big["ivf"]["nprobe_sweep"][-1])
    indexes["ivf"].nprobe = IndexSettings().nprobe
    del indexes["flat"]
    table = pd.DataFrame(
        {"id": np.arange(args.million).astype(str), "title": "random", "category": "random"}
    ).assign(label=-1)
    big_service = SearchService(
        service.path.generators,
        service.path.embedder,
        indexes["ivf"],
        Catalog(table),
        service.query,
        encoder=service.encoder,
    )
    big["ivf"].update(run_queries(big_service, queries, args.k))
    print("1M ivf end to end:", big["ivf"]["end_to_end"])

    save(
        "search_latency",
        {
            "device": "cpu",
            "torch_threads": args.threads,
            "load_average_1m": round(os.getloadavg()[0], 2),
            "k": args.k,
            "catalog_10k": small,
            "catalog_1m_random": big,
        },
    )


if __name__ == "__main__":
    main()
