"""What a random ranking scores, the floor a retrieval test compares a model with."""

from __future__ import annotations

from collections.abc import Iterable
from math import comb


def random_ranking_hit_rate(relevant: Iterable[set[int]], n_catalog: int, k: int) -> float:
    """Expected Recall@``k`` (hit rate) of a uniformly random ranking of ``n_catalog`` items.

    A query misses when none of its ``r`` relevant items is among the ``k`` drawn: the
    hypergeometric chance C(N - r, k) / C(N, k).
    """
    sizes = [len(items) for items in relevant]
    misses = [comb(n_catalog - r, k) / comb(n_catalog, k) for r in sizes]
    return 1 - sum(misses) / len(sizes)
