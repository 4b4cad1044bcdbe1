"""Ranking the catalog for a query: the drawing's similarity, the text's, and what was asked.

Scores (:meth:`Ranker.scores`) are the z-scored sum of the query pictures' cosine to each item's
picture and the text's cosine to each item's title (the evaluation's ``fused`` query,
:func:`fashiongan.evaluation.retrieval.zscore`), plus, in z-units, ``class_boost`` for items of
the wanted class and ``attribute_boost`` for each wanted tone, fit or pattern an item has
(measured on its picture), minus ``exclude_penalty`` for each excluded value it has ("not dark").
With none of these, the faiss index answers (approximate on big catalogs).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from fashiongan.config import SearchQuery
from fashiongan.evaluation.retrieval import zscore
from fashiongan.search.catalog import ATTRIBUTE_SLOTS, Catalog
from fashiongan.search.index import search as index_search
from fashiongan.search.index import stored_vectors


@dataclass(frozen=True)
class Wanted:
    """What the ranking favours and pushes down: slots ``label``, ``tone``, ``fit``, ``pattern``
    (None = any) and, per slot, the values the shopper does not want."""

    slots: dict[str, int | None] = field(default_factory=dict)
    excluded: dict[str, frozenset[int]] = field(default_factory=dict)
    exclude_row: int | None = None  # a catalog reference, never returned

    @property
    def asks(self) -> bool:
        """Anything named or excluded."""
        named = any(v is not None for v in self.slots.values())
        return named or any(self.excluded.values())


@dataclass(frozen=True)
class Ranking:
    """The top-k hits and, when the service scored every item, their (N,) scores."""

    hits: list[dict[str, Any]]
    scores: torch.Tensor | None = None


class TextVectors:
    """Sentence vectors of query texts, the last ``size`` kept: a turn draws and ranks with the
    same caption, and shoppers repeat captions. HF tokenizers may not be shared between threads,
    so encoding holds a lock; the cache is read under it too."""

    def __init__(self, encoder, size: int) -> None:
        self.encoder = encoder
        self.size = size
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, text: str) -> torch.Tensor:
        """(1, text_dim) unit vector of ``text``."""
        text = text.strip()
        with self._lock:
            vector = self._cache.get(text)
            if vector is None:
                vector = self.encoder.encode([text])
                self._cache[text] = vector
                if len(self._cache) > self.size:
                    self._cache.popitem(last=False)
            else:
                self._cache.move_to_end(text)
            return vector

    def encode(self, texts: list[str]) -> torch.Tensor:
        """(len(texts), text_dim), uncached: for one-off batches (the catalog titles)."""
        with self._lock:
            _, vectors, index = self.encoder.encode_unique(texts)
        return vectors[index]


class Ranker:
    """Scores every catalog item for a query; settings fixed when built.

    Args:
        catalog: the items (``attributes`` measured, for the attribute terms).
        index: the faiss index over the catalog's picture vectors (row i = item i).
        title_vectors: (N, text_dim) the titles' text vectors, for the fused ranking.
        query: the ``search_app.query`` settings.
    """

    def __init__(
        self, catalog: Catalog, index, title_vectors: torch.Tensor | None, query: SearchQuery
    ) -> None:
        if query.fuse_text and (title_vectors is None or len(title_vectors) != len(catalog)):
            raise ValueError("fuse_text needs one title vector per catalog item")
        self.catalog = catalog
        self.index = index
        self.title_vectors = title_vectors
        self.query = query
        self.catalog_vectors = torch.from_numpy(stored_vectors(index))  # (N, dim)
        self._labels = catalog.labels

    def rank(
        self, query: np.ndarray, text_vector: torch.Tensor | None, wanted: Wanted, k: int
    ) -> Ranking:
        """Top-k items for a (1, dim) query vector (and the text's (1, text_dim) vector)."""
        sims = self.scores(query, text_vector, wanted)
        if sims is None:
            scores, rows = index_search(self.index, query, k)
            return Ranking(self.catalog.hits(scores[0].tolist(), rows[0].tolist()))
        top = min(k, len(sims) - (wanted.exclude_row is not None))
        scores, rows = sims.topk(top)
        return Ranking(self.catalog.hits(scores.tolist(), rows.tolist()), sims)

    def scores(
        self, query: np.ndarray, text_vector: torch.Tensor | None, wanted: Wanted
    ) -> torch.Tensor | None:
        """(N,) ranking scores, or None when the plain cosine (the index) ranks."""
        fuse = self.query.fuse_text and text_vector is not None
        if not fuse and not (self._boosts and wanted.asks) and wanted.exclude_row is None:
            return None
        sims = (torch.from_numpy(query) @ self.catalog_vectors.T)[0]
        if fuse:
            text_sims = text_vector @ self.title_vectors.T
            sims = (zscore(sims[None]) + zscore(text_sims))[0]
        sims = sims + self._asked_terms(wanted)
        if wanted.exclude_row is not None:
            sims[wanted.exclude_row] = -torch.inf
        return sims

    @property
    def _boosts(self) -> bool:
        q = self.query
        return bool(q.class_boost or q.attribute_boost or q.exclude_penalty)

    def _asked_terms(self, wanted: Wanted) -> torch.Tensor:
        """(N,) the class and attribute boosts and the exclusion penalties, in z-units."""
        q = self.query
        terms = torch.zeros(len(self.catalog))
        label = wanted.slots.get("label")
        if label is not None:
            terms += q.class_boost * (self._labels == label).float()
        terms -= q.exclude_penalty * _has_any(self._labels, wanted.excluded.get("label"))
        attributes = self.catalog.attributes
        if attributes is None:
            return terms
        for column, slot in enumerate(ATTRIBUTE_SLOTS):
            values = attributes[:, column]
            if wanted.slots.get(slot) is not None:
                terms += q.attribute_boost * (values == wanted.slots[slot]).float()
            terms -= q.exclude_penalty * _has_any(values, wanted.excluded.get(slot))
        return terms


def _has_any(values: torch.Tensor, excluded: frozenset[int] | None) -> torch.Tensor:
    """(N,) 1.0 where the value is one of ``excluded``."""
    if not excluded:
        return torch.zeros(len(values))
    return torch.isin(values, torch.tensor(sorted(excluded))).float()
