"""Nodes of ``fashioniq``: the conditional GAN on FashionIQ pairs and the official Recall@K.

Training is the Fashion-MNIST conditional pipeline reused as a template in the ``fashioniq``
namespace (the pipeline registry joins them); the nodes here only translate pairs into the
trainer's view: the items are the *targets*, ``reference_index`` points at the item holding the
candidate picture and the joined relative caption is both the modification text and what the
discriminator conditions on (FashionIQ has no absolute captions).

Evaluation ranks each category's gallery for four queries: image-only (the candidate's
embedding), text-only (the BERT caption mapped into the embedder's space by a ridge regression
fitted on the training pairs), synthetic (the generated target's embedding) and fused
(a weighted sum of the synthetic and image-only cosine scores).
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from fashiongan.compute import batched
from fashiongan.config import (
    ConditionalTraining,
    FashionIQEvaluation,
    TextEncoderParams,
    TrainingItems,
)
from fashiongan.evaluation.fashioniq import fashioniq_recall, rank_gallery
from fashiongan.evaluation.metrics import extract_features
from fashiongan.fashioniq_files import FashionIQDataMissingError
from fashiongan.models.conditional_gan import ConditionalGenerator, ImageEmbedder
from fashiongan.plotting import image_grid, loss_curves
from fashiongan.reporting import render
from fashiongan.text.encoder import TextEncoder
from fashiongan.training.runtime import pick_device
from fashiongan.training.tracking import metric_records

log = logging.getLogger(__name__)

METHODS = ("image", "text", "synthetic", "fused")
METHOD_LABELS = {
    "image": "Image only (candidate)",
    "text": "Text only (caption → ridge map)",
    "synthetic": "Synthetic query (generated target)",
    "fused": "Fused (synthetic + image)",
}


def make_training_items(pairs: pd.DataFrame, settings: TrainingItems) -> pd.DataFrame:
    """The trainer's items: one per training pair, plus one per candidate that is no target.

    ``train_conditional_gan`` draws the reference picture from its own item tensor, so every
    candidate must also be an item. A candidate that is some pair's target points at that
    item; any other joins as an *identity* item (itself + ``identity_caption`` → itself).

    Args:
        pairs: the kept pairs from ``fashioniq_processing``.
        settings: ``identity_caption``.

    Returns:
        One row per item: ``index, split, image_row, label, kind (pair | identity),
        reference_index, caption, modification, category, candidate, target``; the
        joined relative caption is both ``caption`` (for D) and ``modification`` (for G).
    """
    train = pairs[pairs["split"] == "train"].reset_index(drop=True)
    if train.empty:
        raise FashionIQDataMissingError(
            "no FashionIQ training pair has both pictures: check fashioniq.data.images_dir and "
            "data/08_reporting/fashioniq/ingestion.json (README: FashionIQ)"
        )
    item_of_row: dict[int, int] = {}
    for index, row in enumerate(train["target_row"].tolist()):
        item_of_row.setdefault(row, index)
    items = pd.DataFrame(
        {
            "image_row": train["target_row"],
            "label": train["category_id"],
            "kind": "pair",
            "caption": train["caption"],
            "category": train["category"],
            "candidate": train["candidate"],
            "target": train["target"],
        }
    )
    extra = train.drop_duplicates("candidate_row")
    extra = extra[~extra["candidate_row"].isin(item_of_row)]
    identity = pd.DataFrame(
        {
            "image_row": extra["candidate_row"],
            "label": extra["category_id"],
            "kind": "identity",
            "caption": settings.identity_caption,
            "category": extra["category"],
            "candidate": extra["candidate"],
            "target": extra["candidate"],
        }
    )
    for offset, row in enumerate(identity["image_row"].tolist()):
        item_of_row[row] = len(items) + offset
    items = pd.concat([items, identity], ignore_index=True)
    items.insert(0, "index", range(len(items)))
    items.insert(1, "split", "train")
    references = [*train["candidate_row"], *identity["image_row"]]
    items["reference_index"] = [item_of_row[row] for row in references]
    items["modification"] = items["caption"]
    log.info(
        "FashionIQ training items: %d pairs + %d identity items (candidates never a target)",
        len(train),
        len(identity),
    )
    return items


def training_input(
    images: dict[str, torch.Tensor], training_items: pd.DataFrame, encoder: TextEncoderParams
) -> dict[str, torch.Tensor]:
    """The conditional trainer's ``model_input``: the items' pictures and labels (category ids).

    ``data_fingerprint`` (items, digest) joins the trainer's checkpoint fingerprint, so a
    checkpoint of other data (more pictures gathered since) is not resumed. The text encoder
    must stay frozen here: the evaluation's text-only baseline and its queries use the frozen
    BERT features.
    """
    items = training_items.sort_values("index")
    digest = pd.util.hash_pandas_object(
        items[["image_row", "reference_index", "label", "caption"]], index=False
    )
    rows = torch.tensor(items["image_row"].to_numpy(), dtype=torch.long)
    return {
        "train_images": images["images"][rows].float(),  # (N, C, S, S) in [-1, 1]
        "train_labels": torch.tensor(items["label"].to_numpy(), dtype=torch.long),
        "data_fingerprint": torch.tensor([len(items), int(digest.sum()) % 2**63]),
    }


def _queries(pairs: pd.DataFrame, split: str) -> pd.DataFrame:
    queries = pairs[pairs["split"] == split].reset_index(drop=True)
    if queries.empty:
        raise FashionIQDataMissingError(
            f"no FashionIQ {split} pair has both pictures: evaluation needs "
            f"captions/cap.*.{split}.json and their pictures (README: FashionIQ)"
        )
    return queries


def encode_queries(
    pairs: pd.DataFrame, evaluation: FashionIQEvaluation, encoder: TextEncoderParams
) -> dict[str, torch.Tensor]:
    """BERT embeddings of the evaluation split's joined captions, one row per query pair."""
    texts = _queries(pairs, evaluation.split)["caption"].tolist()
    _, embeddings, index = TextEncoder.from_params(encoder).encode_unique(
        texts, batch_size=encoder.batch_size
    )
    return {"text": embeddings[index]}  # (Q, D)


def _embed(
    embedder: ImageEmbedder, pictures: torch.Tensor, evaluation: FashionIQEvaluation
) -> torch.Tensor:
    """Unit embeddings (N, dim), float32 on the CPU."""
    device = pick_device(evaluation.device)
    embedder = embedder.eval().to(device)
    return extract_features(
        embedder, pictures.float(), batch_size=evaluation.batch_size, device=device
    ).float()


def fit_text_projection(
    embedder: ImageEmbedder,
    images: dict[str, torch.Tensor],
    training_items: pd.DataFrame,
    conditioning: dict[str, torch.Tensor],
    evaluation: FashionIQEvaluation,
) -> dict[str, torch.Tensor]:
    """Text-only baseline: ridge regression from the caption's BERT vector to the target's
    embedding, fitted on the training pairs (closed form, deterministic).

    ``W = (TᵀT + λI)⁻¹ TᵀE`` with T the (N, D_text) caption vectors and E the (N, D_embed)
    target embeddings; a query's vector is ``normalize(t W)``.
    """
    pair = (training_items.sort_values("index")["kind"] == "pair").to_numpy()
    mask = torch.as_tensor(pair)
    text = conditioning["text_embeddings"][conditioning["modification_index"][mask]].double()
    rows = torch.tensor(training_items.sort_values("index")["image_row"].to_numpy()[pair])
    target = _embed(embedder, images["images"][rows], evaluation).double()
    gram = text.T @ text + evaluation.text_ridge * torch.eye(text.shape[1], dtype=text.dtype)
    return {"weight": torch.linalg.solve(gram, text.T @ target).float()}  # (D_text, D_embed)


@torch.no_grad()
def _synthetic(
    generator: ConditionalGenerator,
    embedder: ImageEmbedder,
    text: torch.Tensor,
    candidates: torch.Tensor,
    evaluation: FashionIQEvaluation,
) -> torch.Tensor:
    """Mean embedding of ``n_samples`` generated targets per query, renormalised: (Q, dim)."""
    device = pick_device(evaluation.device)
    generator = generator.eval().to(device)
    total = 0.0
    for sample in range(evaluation.n_samples):
        noise = torch.randn(
            len(text),
            generator.config.noise_dim,
            generator=torch.Generator().manual_seed(evaluation.seed * 1000 + sample),
        )
        fakes = batched(
            lambda z, t, c: generator(z, t.float(), c.float()),
            noise,
            text,
            candidates,
            batch_size=evaluation.batch_size,
            device=device,
        )
        total = total + _embed(embedder, fakes, evaluation)
    return F.normalize(total, dim=1)


def score_queries(
    generator: ConditionalGenerator,
    embedder: ImageEmbedder,
    images: dict[str, torch.Tensor],
    pairs: pd.DataFrame,
    gallery: pd.DataFrame,
    query_text: dict[str, torch.Tensor],
    text_projection: dict[str, torch.Tensor],
    evaluation: FashionIQEvaluation,
) -> pd.DataFrame:
    """Rank each category's gallery for every evaluation query with the four methods.

    Returns:
        One row per (method, query): ``method, category, position, candidate, target,
        caption, gallery_size, target_rank`` (0-based; gallery size when the target is not in
        the gallery) and ``top`` (the first max(ks) gallery ASINs).
    """
    split, k = evaluation.split, max(evaluation.ks)
    queries = _queries(pairs, split)
    pictures, weight = images["images"], text_projection["weight"]
    text = query_text["text"]
    if len(text) != len(queries):
        raise ValueError(f"{len(text)} query texts for {len(queries)} {split} pairs: rerun")
    w = evaluation.fusion_weight
    rows = []
    for category, group in queries.groupby("category", sort=False):
        listed = gallery[(gallery["split"] == split) & (gallery["category"] == category)]
        if listed.empty:
            log.warning("FashionIQ %s/%s: empty gallery, queries skipped", category, split)
            continue
        ids = listed["asin"].tolist()
        index = torch.tensor(group.index.to_numpy())
        candidates = pictures[torch.tensor(group["candidate_row"].to_numpy())]
        gallery_vec = _embed(embedder, pictures[torch.tensor(listed["row"].to_numpy())], evaluation)
        image_vec = _embed(embedder, candidates, evaluation)
        text_vec = F.normalize(text[index].float() @ weight, dim=1)
        synthetic_vec = _synthetic(generator, embedder, text[index], candidates, evaluation)
        scores = {
            "image": image_vec @ gallery_vec.T,  # (Q, G) cosine
            "text": text_vec @ gallery_vec.T,
            "synthetic": synthetic_vec @ gallery_vec.T,
        }
        scores["fused"] = w * scores["synthetic"] + (1 - w) * scores["image"]
        targets = group["target"].tolist()
        for method in METHODS:
            top, ranks = rank_gallery(scores[method], ids, targets, k)
            rows.append(
                group[["category", "position", "candidate", "target", "caption"]].assign(
                    method=method, gallery_size=len(ids), target_rank=ranks, top=top
                )
            )
    columns = ["method", "category", "position", "candidate", "target", "caption"]
    return pd.concat(rows, ignore_index=True)[[*columns, "gallery_size", "target_rank", "top"]]


def fashioniq_metrics(rankings: pd.DataFrame, evaluation: FashionIQEvaluation) -> dict[str, Any]:
    """Recall@K per category and average for each method, and the chance level."""
    ks = list(evaluation.ks)
    methods = {}
    for method in METHODS:
        ranked = rankings[rankings["method"] == method]
        by_category = dict(tuple(ranked.groupby("category", sort=False)))
        methods[method] = fashioniq_recall(
            {c: [list(t) for t in g["top"]] for c, g in by_category.items()},
            {c: g["target"].tolist() for c, g in by_category.items()},
            ks,
        )
    sizes = rankings.drop_duplicates("category").set_index("category")["gallery_size"]
    chance = {c: {f"recall_at_{k}": min(k, int(n)) / int(n) for k in ks} for c, n in sizes.items()}
    chance["average"] = {
        f"recall_at_{k}": sum(v[f"recall_at_{k}"] for v in chance.values()) / len(sizes) for k in ks
    }
    outside = rankings[rankings["method"] == METHODS[0]]
    outside = outside[outside["target_rank"] >= outside["gallery_size"]]
    metrics = {
        "split": evaluation.split,
        "ks": ks,
        "gallery_size": {c: int(n) for c, n in sizes.items()},
        "targets_outside_gallery": int(len(outside)),
        "methods": methods,
        "chance": chance,
    }
    return metrics


def fashioniq_mlflow_metrics(metrics: dict[str, Any], prefix: str) -> dict[str, dict]:
    """Every method's Recall@K as ``<prefix><method>/<category or average>/recall_at_<k>`` at
    step 0 (query counts and chance stay in the JSON)."""
    return metric_records(
        {
            f"{prefix}{method}/{category}/{name}": value
            for method, table in metrics["methods"].items()
            for category, values in table.items()
            for name, value in values.items()
            if name != "queries"
        }
    )


def plot_fashioniq(
    generator: ConditionalGenerator,
    images: dict[str, torch.Tensor],
    items: pd.DataFrame,
    pairs: pd.DataFrame,
    query_text: dict[str, torch.Tensor],
    rankings: pd.DataFrame,
    history: pd.DataFrame,
    evaluation: FashionIQEvaluation,
) -> dict[str, Figure]:
    """Example queries (candidate | generated | target | fused top-k) and the loss curves."""
    queries = _queries(pairs, evaluation.split)
    fused = rankings[rankings["method"] == "fused"].set_index(["category", "position"])
    # round-robin over categories so every category shows up
    order = queries.groupby("category", sort=False).cumcount().sort_values(kind="stable").index
    chosen = [
        i for i in order if (queries.at[i, "category"], queries.at[i, "position"]) in fused.index
    ]
    chosen = chosen[: evaluation.n_examples]
    pictures, row_of = images["images"], dict(zip(items["asin"], items["row"], strict=True))
    index = torch.as_tensor(chosen, dtype=torch.long)
    candidates = pictures[torch.tensor(queries.loc[chosen, "candidate_row"].to_numpy())].float()
    noise = torch.randn(
        len(chosen),
        generator.config.noise_dim,
        generator=torch.Generator().manual_seed(evaluation.seed),
    )
    with torch.no_grad():
        generated = generator.eval().cpu()(noise, query_text["text"][index].float(), candidates)
    cols = evaluation.example_columns
    tiles = []
    for i, picked in enumerate(chosen):
        top = list(
            fused.loc[(queries.at[picked, "category"], queries.at[picked, "position"]), "top"]
        )
        found = [pictures[row_of[a]].float() for a in top[:cols]]
        blanks = [torch.full_like(candidates[0], -1.0)] * (cols - len(found))
        target = pictures[queries.at[picked, "target_row"]].float()
        tiles += [candidates[i], generated[i], target, *found, *blanks]
    labels = [f"{queries.at[i, 'category']}: {queries.at[i, 'caption'][:38]}" for i in chosen]
    plots = {
        "fashioniq_examples.png": image_grid(
            torch.stack(tiles),
            ncols=3 + cols,
            row_labels=labels,
            title=f"candidate | generated | target | fused top-{cols} ({evaluation.split})",
        ),
        "fashioniq_loss_curves.png": loss_curves(history, title="FashionIQ conditional GAN"),
    }
    return plots


def _pct(value: float) -> str:
    return f"{100 * value:.2f}"


def _recall_rows(metrics: dict[str, Any], columns: list[str]) -> list[dict[str, Any]]:
    """One row per query method and chance: Recall@K cells in % and their mean."""
    ks = metrics["ks"]
    tables = {**{m: metrics["methods"][m] for m in METHODS}, "chance": metrics["chance"]}
    labels = {**METHOD_LABELS, "chance": "Chance (K / gallery size)"}
    return [
        {
            "label": labels[name],
            "cells": [
                _pct(table[c][f"recall_at_{k}"]) if c in table else "–" for c in columns for k in ks
            ],
            "mean": _pct(sum(table["average"][f"recall_at_{k}"] for k in ks) / len(ks)),
        }
        for name, table in tables.items()
    ]


def write_fashioniq_report(
    ingestion: dict[str, Any],
    training_items: pd.DataFrame,
    training_metrics: dict[str, Any],
    metrics: dict[str, Any],
    training: ConditionalTraining,
    evaluation: FashionIQEvaluation,
) -> str:
    """``reports/fashioniq.md`` (template ``fashioniq.md.j2``): data counts, the Recall@K table
    and the choices behind it."""
    categories = list(metrics["gallery_size"])
    identity = training_items[training_items["kind"] == "identity"]
    image_queries = metrics["methods"]["image"]
    return render(
        "fashioniq.md.j2",
        image_size=ingestion["image_size"],
        channels=ingestion["channels"],
        split=metrics["split"],
        ks=metrics["ks"],
        columns=[*categories, "average"],
        recall_rows=_recall_rows(metrics, [*categories, "average"]),
        queries_per_category=[
            f"{c} {image_queries[c]['queries']} (gallery {metrics['gallery_size'][c]})"
            for c in categories
            if c in image_queries
        ],
        targets_outside_gallery=metrics["targets_outside_gallery"],
        pictures=ingestion["images"],
        pairs=ingestion["pairs"],
        pairs_by_split=ingestion["pairs_by_split"],
        training=training,
        iterations=training_metrics.get("iterations", "?"),
        wall_time_s=training_metrics.get("wall_time_s", "?"),
        n_pairs=len(training_items) - len(identity),
        n_identity=len(identity),
        identity_text=identity["caption"].iloc[0] if len(identity) else "-",
        evaluation=evaluation,
        image_weight=f"{1 - evaluation.fusion_weight:g}",
    )
