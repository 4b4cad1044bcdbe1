"""The retrieval protocol: does a generated image find the right catalog items?

The catalog is the Fashion-MNIST test set. A query asks for a *target* test item; the correct
answers are every catalog item with the target's class AND tone, fit and pattern (known from labels
and the caption grammar's attributes). Two kinds of query:

- text: a fresh full caption of the target ("a dark slim patterned dress"), drawn with its own
  random stream so it is rarely the catalog item's own text;
- composed: a reference test item plus the modification text that turns it into the target
  ("the same but darker and as a coat"); the reference itself is left out of the ranking.

Methods: ``image`` (the reference's embedder neighbours; composed only), ``text`` (BERT query vs
BERT of the catalog items' captions), ``synthetic`` (the mean embedder vector of n images the
conditional generator draws for the query, cosine top-k) and ``fused`` (z-scored sum of the
synthetic and text similarities).

The building blocks (:func:`draw_queries`, :func:`relevant_sets`, :func:`rank`,
:func:`retrieval_scores`, :func:`synthetic_queries`, :func:`zscore`) serve any catalog;
:func:`retrieval_protocol` and :func:`retrieve_with_model` put them together for Fashion-MNIST.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from fashiongan.compute import batched
from fashiongan.config import RetrievalParams
from fashiongan.evaluation.metrics import mean_average_precision, recall_at_k
from fashiongan.evaluation.sampling import encode_texts
from fashiongan.models.conditional_gan import ConditionalGenerator
from fashiongan.text.captions import caption, modification_text

#: What makes a catalog item correct for a query: the target's class and attributes.
KEY = ("label", "tone", "fit", "pattern")
QUERY_KINDS = ("text", "composed")
METHODS = {
    "text": ("text", "synthetic", "fused"),
    "composed": ("image", "text", "synthetic", "fused"),
}
#: The single-modality methods the synthetic and fused queries must beat.
BASELINES = {"text": ("text",), "composed": ("image", "text")}


# --------------------------------------------------------------------------------------------------
# Building blocks


def draw_queries(
    items: pd.DataFrame, n_queries: int, seed: int, same_class_prob: float
) -> pd.DataFrame:
    """Targets, references and query texts.

    Args:
        items: one row per catalog item (position = id) with ``label``, ``tone``, ``fit``,
            ``pattern``.
        n_queries: targets drawn without replacement (at most the catalog's size).
        seed: the draw, the query texts and the modification texts each get a stream from it.
        same_class_prob: share of references of the target's class.

    Returns:
        ``target``, ``reference`` (≠ target), ``text`` (a full caption of the target) and
        ``modification`` (reference → target) per query.
    """
    values = items[list(KEY)].to_numpy().astype(int)
    n = len(values)
    if n < 2:
        raise ValueError(f"retrieval needs a catalog of at least 2 items, got {n}")
    rng, text_rng, mod_rng = (random.Random(f"{seed}-{part}") for part in ("draw", "text", "mod"))
    targets = rng.sample(range(n), min(n_queries, n))
    by_label = {label: np.flatnonzero(values[:, 0] == label) for label in set(values[:, 0])}
    rows = []
    for target in targets:
        same = rng.random() < same_class_prob
        pool = by_label[values[target, 0]] if same else np.arange(n)
        reference = int(pool[rng.randrange(len(pool))])
        if reference == target:
            reference = (target + 1) % n
        item = dict(zip(KEY, map(int, values[target]), strict=True))
        ref_item = dict(zip(KEY, map(int, values[reference]), strict=True))
        text = caption(item["label"], item["tone"], item["fit"], item["pattern"], text_rng)
        rows.append((target, reference, text, modification_text(ref_item, item, mod_rng)))
    return pd.DataFrame(rows, columns=["target", "reference", "text", "modification"])


def relevant_sets(
    keys: np.ndarray, targets: list[int], exclude: list[int] | None = None
) -> list[set[int]]:
    """Per query, the catalog ids whose key row (e.g. label, tone, fit, pattern) equals the
    target's; ``exclude`` (one id per query, e.g. the composed query's reference) is left out."""
    groups: dict[tuple, set[int]] = {}
    for position, key in enumerate(map(tuple, keys.tolist())):
        groups.setdefault(key, set()).add(position)
    out = []
    for i, target in enumerate(targets):
        relevant = set(groups[tuple(keys[target].tolist())])
        if exclude is not None:
            relevant.discard(exclude[i])
        out.append(relevant)
    return out


def rank(
    similarities: torch.Tensor, depth: int, exclude: torch.Tensor | None = None
) -> torch.Tensor:
    """Top-``depth`` catalog ids per query (Q, depth), best first; ``exclude`` (Q,) never ranks."""
    sims = similarities.clone()
    if exclude is not None:
        sims[torch.arange(len(sims)), exclude] = -torch.inf
    available = sims.shape[1] - (exclude is not None)
    return sims.topk(min(depth, available), dim=1).indices


def zscore(similarities: torch.Tensor) -> torch.Tensor:
    """Standardise each query's similarities over the catalog (row-wise), so that two methods'
    scores can be added."""
    mean = similarities.mean(1, keepdim=True)
    return (similarities - mean) / similarities.std(1, keepdim=True).clamp(min=1e-8)


def retrieval_scores(
    ranked: torch.Tensor, relevant: list[set[int]], ks: list[int], map_k: int
) -> dict[str, float]:
    """Recall@K (hit rate) for each K and mAP@``map_k``."""
    recalls = recall_at_k(ranked, relevant, ks)
    return {
        **{f"recall_at_{k}": float(v) for k, v in recalls.items()},
        f"map_at_{map_k}": float(mean_average_precision(ranked, relevant, k=map_k)),
    }


def scores_by_class(
    ranked: torch.Tensor,
    relevant: list[set[int]],
    target_labels: np.ndarray,
    ks: list[int],
    map_k: int,
) -> dict[str, Any]:
    """``overall`` scores and ``per_class`` (class id → scores) over the queries' target class."""
    per_class = {}
    for label in sorted(set(target_labels.tolist())):
        rows = np.flatnonzero(target_labels == label)
        per_class[str(label)] = retrieval_scores(
            ranked[torch.as_tensor(rows)], [relevant[i] for i in rows], ks, map_k
        )
    return {"overall": retrieval_scores(ranked, relevant, ks, map_k), "per_class": per_class}


@torch.no_grad()
def synthetic_queries(
    generator: ConditionalGenerator,
    embedder: torch.nn.Module,
    text: torch.Tensor,
    reference: torch.Tensor | None,
    n_images: int,
    seed: int,
    batch_size: int,
    device: torch.device | str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generate ``n_images`` per query, embed them, average: (unit vectors (Q, D), first images).

    Args:
        text: (Q, text_dim) query text features.
        reference: (Q, C, H, W) reference images for composed queries, or None.
        seed: the noise of all Q · n_images draws.
    """
    q = len(text)
    z = torch.randn(
        q * n_images, generator.config.noise_dim, generator=torch.Generator().manual_seed(seed)
    )
    text_rep = text.repeat_interleave(n_images, 0)
    ref_rep = None if reference is None else reference.repeat_interleave(n_images, 0)
    images = batched(generator, z, text_rep, ref_rep, batch_size=batch_size, device=device)
    vectors = batched(embedder, images, batch_size=batch_size, device=device)
    mean = F.normalize(vectors.view(q, n_images, -1).mean(1), dim=1)
    return mean, images.view(q, n_images, *images.shape[1:])[:, 0]


def verdict(model_out: dict[str, Any], ks: list[int], map_k: int) -> dict[str, Any]:
    """Whether the synthetic (and the fused) query beats every single-modality baseline, per
    kind of query.

    "Beats" means a higher Recall@K at the middle cut-off (10 by default) and a higher mAP.
    """
    recall_key = f"recall_at_{sorted(ks)[len(ks) // 2]}"
    map_key = f"map_at_{map_k}"
    out = {"criterion": f"{recall_key} and {map_key} above every baseline"}
    for kind, baselines in BASELINES.items():
        for method in ("synthetic", "fused"):
            scores = model_out[kind][method]["overall"]
            losses = [
                baseline
                for baseline in baselines
                for key in (recall_key, map_key)
                if scores[key] <= model_out[kind][baseline]["overall"][key]
            ]
            out[f"{kind}_{method}_beats_baselines"] = not losses
            out[f"{kind}_not_beaten_by_{method}"] = sorted(set(losses))
    return out


# --------------------------------------------------------------------------------------------------
# The Fashion-MNIST protocol


@dataclass(frozen=True)
class RetrievalProtocol:
    """The drawn queries and their answers: the same for every model."""

    items: pd.DataFrame  # the catalog's captions and attributes (catalog_captions)
    queries: pd.DataFrame  # draw_queries
    relevant: dict[str, list[set[int]]]  # kind → per query the correct catalog ids
    target_labels: np.ndarray  # (Q,) the targets' classes
    ks: list[int]
    map_k: int

    @property
    def references(self) -> list[int]:
        return self.queries["reference"].tolist()

    @property
    def depth(self) -> int:
        """How many catalog ids a ranking keeps: enough for every cut-off."""
        return max([*self.ks, self.map_k])

    def exclude(self, kind: str) -> torch.Tensor | None:
        """Ids a query of ``kind`` must not return: a composed query's own reference."""
        return torch.tensor(self.references) if kind == "composed" else None

    def settings(self, n_images: int) -> dict[str, Any]:
        """What the retrieval numbers were measured on, for the report."""
        return {
            "catalog": "Fashion-MNIST test set",
            "n_catalog": len(self.items),
            "n_queries": len(self.queries),
            "n_images_per_query": n_images,
            "ks": self.ks,
            "map_k": self.map_k,
            "relevance": "same class, tone, fit and pattern as the target",
            "mean_relevant_per_query": float(np.mean([len(r) for r in self.relevant["text"]])),
        }


def retrieval_protocol(
    items: pd.DataFrame, n_catalog_images: int, settings: RetrievalParams
) -> RetrievalProtocol:
    """Draw the queries over the catalog ``items`` and find their correct answers.

    Args:
        items: one caption row per catalog item (``catalog_captions``), in catalog order.
        n_catalog_images: the catalog's pictures; there must be one caption row for each.
        settings: ``seed``, ``n_queries``, ``same_class_prob``, ``ks``, ``map_k``.
    """
    if len(items) != n_catalog_images:
        raise ValueError(
            f"{len(items)} test captions for {n_catalog_images} test images: "
            "rerun the captions pipeline (describe_items)"
        )
    keys = items[list(KEY)].to_numpy().astype(int)
    queries = draw_queries(items, settings.n_queries, settings.seed, settings.same_class_prob)
    targets, references = queries["target"].tolist(), queries["reference"].tolist()
    return RetrievalProtocol(
        items=items,
        queries=queries,
        relevant={
            "text": relevant_sets(keys, targets),
            "composed": relevant_sets(keys, targets, exclude=references),
        },
        target_labels=keys[targets, 0],
        ks=[int(k) for k in settings.ks],
        map_k=settings.map_k,
    )


@dataclass(frozen=True)
class ModelRetrieval:
    """One model's retrieval results and what the example figure shows."""

    scores: dict[str, Any]  # kind → method → overall / per_class, and ``verdict``
    synthetic: dict[str, tuple[torch.Tensor, torch.Tensor]]  # kind → (vectors, first images)
    ranked_synthetic: dict[str, torch.Tensor]  # kind → (Q, depth) ids of the synthetic query


def query_similarities(
    kind: str,
    query_text: torch.Tensor,
    synthetic: torch.Tensor,
    catalog: torch.Tensor,
    catalog_text: torch.Tensor,
    references: list[int],
) -> dict[str, torch.Tensor]:
    """(Q, N) similarities of every method for queries of ``kind``."""
    sims = {"text": query_text @ catalog_text.T, "synthetic": synthetic @ catalog.T}
    if kind == "composed":
        sims["image"] = catalog[references] @ catalog.T
    sims["fused"] = zscore(sims["synthetic"]) + zscore(sims["text"])
    return sims


def retrieve_with_model(
    generator: ConditionalGenerator,
    embedder: torch.nn.Module,
    images: torch.Tensor,
    protocol: RetrievalProtocol,
    settings: RetrievalParams,
    batch_size: int,
    device: torch.device | str,
) -> ModelRetrieval:
    """Every method's Recall@K and mAP (overall, per class) for one conditional model.

    Args:
        generator, embedder: the model's generator and its retrieval embedder.
        images: the catalog pictures (N, C, H, W), in the order of ``protocol.items``.
        settings: ``n_images`` per synthetic query and its noise ``seed``.
    """
    embedder, generator = embedder.eval().to(device), generator.eval().to(device)
    catalog = batched(embedder, images, batch_size=batch_size, device=device)
    catalog_text = encode_texts(generator.config, protocol.items["caption"].astype(str).tolist())
    queries, references = protocol.queries, protocol.references
    query_text = {
        "text": encode_texts(generator.config, queries["text"].tolist()),
        "composed": encode_texts(generator.config, queries["modification"].tolist()),
    }
    reference_images = {"text": None, "composed": images[references]}
    synthetic = {
        kind: synthetic_queries(
            generator, embedder, query_text[kind], reference_images[kind], settings.n_images,
            settings.seed, batch_size, device,
        )
        for kind in QUERY_KINDS
    }  # fmt: skip
    scores: dict[str, Any] = {}
    ranked_synthetic = {}
    for kind in QUERY_KINDS:
        sims = query_similarities(
            kind, query_text[kind], synthetic[kind][0], catalog, catalog_text, references
        )
        scores[kind] = {}
        for method in METHODS[kind]:
            ranked = rank(sims[method], protocol.depth, protocol.exclude(kind))
            if method == "synthetic":
                ranked_synthetic[kind] = ranked
            scores[kind][method] = scores_by_class(
                ranked, protocol.relevant[kind], protocol.target_labels, protocol.ks,
                protocol.map_k,
            )  # fmt: skip
    scores["verdict"] = verdict(scores, protocol.ks, protocol.map_k)
    generator.cpu()
    embedder.cpu()
    return ModelRetrieval(scores, synthetic, ranked_synthetic)
