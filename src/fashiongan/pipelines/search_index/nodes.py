"""Nodes of the search index: catalog items → embeddings → faiss index → a search evaluation.

The catalog is the Fashion-MNIST test set (titles = its captions) or any folder of product
pictures described by a CSV (``id,title,category`` and optionally ``image``, a path relative to
the folder; without it the picture is the first ``<id>.*`` file).
"""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from fashiongan.compute import batched, torch_threads
from fashiongan.config import IndexParams, SearchEvaluation, SearchQuery, SearchSource
from fashiongan.generation import text_encoder
from fashiongan.images import ImageInputError, load_image
from fashiongan.pixels import from_uint8, to_uint8
from fashiongan.search.catalog import Catalog
from fashiongan.search.index import IndexSettings, build_index, describe, search
from fashiongan.search.service import SearchService
from fashiongan.training.tracking import metric_records

log = logging.getLogger(__name__)

CATALOG_COLUMNS = ("id", "title", "category", "label", "image")


def collect_catalog(
    model_input: dict[str, torch.Tensor],
    captions: pd.DataFrame,
    embedder: torch.nn.Module,
    class_names: list[str],
    source: SearchSource,
) -> tuple[pd.DataFrame, dict[str, torch.Tensor]]:
    """The items to search and their pictures at the embedder's resolution.

    Args:
        model_input: ``test_images`` (N, 1, 28, 28) in [-1, 1] and ``test_labels``.
        captions: the caption table; the test split's captions become product titles.
        embedder: only its ``config`` (image size, channels) is read.
        class_names: Fashion-MNIST class names (the ``category`` column).
        source: ``kind`` (``fashion_mnist`` | ``folder``), ``limit`` (first N items or None) and
            for folders ``images_dir`` and ``csv``.

    Returns:
        The table (``id, title, category, label, image``; ``label`` -1 when the category is
        not a class name) and ``{"images": uint8 (N, C, H, W)}`` thumbnails.
    """
    if source.kind == "fashion_mnist":
        table, images = _fashion_mnist_items(model_input, captions, class_names)
    else:  # "folder"
        c = embedder.config
        table, images = _folder_items(source, class_names, c.image_size, c.channels)
    if source.limit is not None:
        table, images = table.iloc[: source.limit].reset_index(drop=True), images[: source.limit]
    if table.empty:
        raise ValueError("the catalog is empty: nothing to index")
    if table["id"].duplicated().any():
        dupes = table.loc[table["id"].duplicated(), "id"].head(3).tolist()
        raise ValueError(f"catalog ids must be unique; repeated: {dupes}")
    thumbnails = to_uint8(images).permute(0, 3, 1, 2).contiguous()  # (N, C, H, W) uint8
    return table, {"images": thumbnails}


def _fashion_mnist_items(
    model_input: dict[str, torch.Tensor], captions: pd.DataFrame, class_names: list[str]
) -> tuple[pd.DataFrame, torch.Tensor]:
    images, labels = model_input["test_images"], model_input["test_labels"]
    test = captions[captions["split"] == "test"].drop_duplicates("index").set_index("index")
    missing = set(range(len(labels))) - set(test.index)
    if missing:
        raise ValueError(f"{len(missing)} test items have no caption: rerun the caption step")
    titles = test.loc[range(len(labels)), "caption"].tolist()
    table = pd.DataFrame(
        {
            "id": [f"fmnist-test-{i:05d}" for i in range(len(labels))],
            "title": titles,
            "category": [class_names[int(v)] for v in labels],
            "label": labels.long().numpy(),
            "image": "",
        }
    )
    return table, images


def _folder_items(
    source: SearchSource, class_names: list[str], size: int, channels: int
) -> tuple[pd.DataFrame, torch.Tensor]:
    folder = Path(source.images_dir)
    frame = pd.read_csv(source.csv, dtype=str).fillna("")
    missing = {"id", "title", "category"} - set(frame.columns)
    if missing:
        raise ValueError(f"{source.csv} lacks columns {sorted(missing)} (id,title,category)")
    lookup = {name.lower(): i for i, name in enumerate(class_names)}
    rows, images, skipped = [], [], []
    for item in frame.itertuples(index=False):
        path = folder / item.image if getattr(item, "image", "") else _find_picture(folder, item.id)
        try:
            if path is None:
                raise ImageInputError(f"no picture named {item.id}.* in {folder}")
            images.append(load_image(path, size, channels)[0])
        except ImageInputError as err:
            skipped.append(f"{item.id}: {err}")
            continue
        label = lookup.get(item.category.strip().lower(), -1)
        rows.append((item.id, item.title, item.category, label, str(path)))
    if skipped:
        log.warning("%d catalog items skipped, e.g. %s", len(skipped), skipped[:3])
    if not images:
        raise ValueError(f"no readable product pictures in {folder}")
    return pd.DataFrame(rows, columns=list(CATALOG_COLUMNS)), torch.stack(images)


def _find_picture(folder: Path, item_id: str) -> Path | None:
    return next(iter(sorted(folder.glob(f"{item_id}.*"))), None)


def embed_catalog(
    thumbnails: dict[str, torch.Tensor], embedder: torch.nn.Module, batch_size: int
) -> dict[str, torch.Tensor]:
    """Unit embedding of every catalog picture: ``{"vectors": (N, dim) float32}``."""
    embedder = embedder.eval()
    vectors = batched(
        lambda pixels: embedder(from_uint8(pixels)), thumbnails["images"], batch_size=batch_size
    )
    return {"vectors": vectors.float().contiguous()}


def encode_titles(table: pd.DataFrame, generator: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The catalog titles' text vectors, ``{"vectors": (N, text_dim) float32}``, encoded with the
    conditional generator's text encoder: the text side of the app's fused ranking, computed
    once here rather than at every app start (10k titles take about 20 s on 2 cores)."""
    config = generator.config
    encoder = text_encoder(config.text_encoder, config.text_pooling)
    _, unique_vectors, index = encoder.encode_unique(table["title"].astype(str).tolist())
    return {"vectors": unique_vectors[index].float().contiguous()}


def build_search_index(
    vectors: dict[str, torch.Tensor], params: IndexParams
) -> tuple[Any, dict[str, Any]]:
    """A faiss index over the catalog vectors, and what was built (kind, size, build time).

    The keys the YAML leaves out (IVF training sample, HNSW build depth, k-means seed) keep
    :class:`~fashiongan.search.index.IndexSettings`' values.
    """
    started = time.perf_counter()
    settings = IndexSettings(**params.model_dump())
    index = build_index(vectors["vectors"].numpy(), settings)
    info = {**describe(index), "build_time_s": round(time.perf_counter() - started, 3)}
    log.info("search index: %s", info)
    return index, info


def evaluate_search(
    generator: torch.nn.Module,
    embedder: torch.nn.Module,
    index: Any,
    table: pd.DataFrame,
    thumbnails: dict[str, torch.Tensor],
    vectors: dict[str, torch.Tensor],
    index_info: dict[str, Any],
    evaluation: SearchEvaluation,
    query: SearchQuery,
) -> tuple[dict[str, Any], dict[str, Figure]]:
    """How well text → generated image → top-k finds items of the asked-for class.

    Queries are catalog titles (a random sample); an item is relevant when its class is the
    title's class. Compared with image queries (an item's own vector, itself left out), which
    show what the embedding can do with a perfect query image, and with chance (class share).

    Queries are single, tiny forward passes: ``evaluation.threads`` torch threads (1 in
    conf/base) serve them faster than many threads contending on a shared CPU.

    The app's ``query`` settings read the titles; the drawing alone ranks (no text fusion, no
    boosts), so that the figure measures the generated image as a query.

    Returns:
        Metrics and the example figure (saved to reports/figures and MLflow).
    """
    drawing_only = query.model_copy(
        update={"k": evaluation.k, "n_images": evaluation.n_images, "seed": evaluation.seed,
                "fuse_text": False, "class_boost": 0.0, "attribute_boost": 0.0,
                "exclude_penalty": 0.0}
    )  # fmt: skip
    with torch_threads(evaluation.threads):
        service = SearchService(
            {"conditional": generator}, embedder, index,
            Catalog(table.reset_index(drop=True), thumbnails["images"]), drawing_only,
        )  # fmt: skip
        return _evaluate_search(service, table, vectors, index_info, evaluation)


def _evaluate_search(
    service: SearchService, table, vectors, index_info, evaluation
) -> tuple[dict[str, Any], dict[str, Figure]]:
    k = evaluation.k
    index = service.ranker.index
    labelled = table.index[table["label"] >= 0].tolist()
    rng = random.Random(evaluation.seed)
    sample = rng.sample(labelled, min(evaluation.n_queries, len(labelled)))
    text_precision, intent_hits, latencies = [], [], []
    for row in sample:
        result = service.search(str(table.at[row, "title"]))
        want = int(table.at[row, "label"])
        text_precision.append(np.mean([hit["label"] == want for hit in result.hits]))
        intent_hits.append(result.intent is not None and result.intent.label == want)
        latencies.append(result.timings_ms["total"])

    own = vectors["vectors"][sample].numpy()
    scores, rows = search(index, own, k + 1)
    labels = table["label"].to_numpy()
    image_precision = [
        np.mean([labels[r] == labels[q] for r in hit_rows if r != q and r >= 0][:k])
        for q, hit_rows in zip(sample, rows, strict=True)
    ]
    shares = table.loc[labelled, "label"].value_counts(normalize=True)
    metrics = {
        "n_items": len(table),
        "n_queries": len(sample),
        "k": k,
        f"text_class_precision_at_{k}": _mean(text_precision),
        f"image_class_precision_at_{k}": _mean(image_precision),
        f"chance_class_precision_at_{k}": _mean([shares[labels[q]] for q in sample]),
        "intent_class_accuracy": _mean(intent_hits),
        "query_latency_ms_median": _mean([float(np.median(latencies))]) if latencies else None,
        "index": index_info,
    }
    figure = plot_examples(service, list(evaluation.examples), min(k, 8))
    return metrics, {"search_examples.png": figure}


def search_mlflow_metrics(metrics: dict[str, Any]) -> dict[str, dict]:
    """The rates and the median latency as ``search/<name>`` at step 0; counts, ``k`` and the
    index description stay in the JSON only."""
    return metric_records(
        {f"search/{key}": value for key, value in metrics.items() if isinstance(value, float)}
    )


def _mean(values: list) -> float | None:
    return round(float(np.mean(values)), 4) if len(values) else None


def plot_examples(service: SearchService, queries: list[str], k: int) -> Figure:
    """One row per query: the generated image, then the top-k catalog items with scores."""
    fig, axes = plt.subplots(
        len(queries), k + 1, figsize=(1.1 * (k + 1) + 2.2, 1.45 * len(queries)), squeeze=False
    )
    for row, query in enumerate(queries):
        result = service.search(query, k=k)
        generated = to_uint8(result.images[:1])[0].numpy()
        cells = [(generated, "generated")] + [
            (
                np.asarray(service.catalog.image(hit["row"], scale=1)),
                f"{hit['category'][:11]}\n{hit['score']:.2f}",
            )
            for hit in result.hits
        ]
        for col, ax in enumerate(axes[row]):
            ax.set_xticks([])
            ax.set_yticks([])
            if col >= len(cells):
                ax.axis("off")
                continue
            pixels, label = cells[col]
            ax.imshow(pixels.squeeze(), cmap="gray", vmin=0, vmax=255)
            ax.set_xlabel(label, fontsize=6.5)
        keywords = "\n".join(result.keywords) or "(no keywords)"
        axes[row][0].set_ylabel(
            f"{query[:32]}\n{keywords}", fontsize=7, rotation=0, ha="right", va="center"
        )
    fig.suptitle("Text → generated image → top catalog items (category, cosine)", fontsize=9)
    fig.tight_layout()
    return fig
