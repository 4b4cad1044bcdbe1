"""Retrieval evaluation: does a generated image find the right catalog items?

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
"""

from __future__ import annotations

import logging
import random
import textwrap
from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from fashiongan.evaluation.metrics import mean_average_precision, recall_at_k
from fashiongan.models.conditional_gan import ConditionalGenerator
from fashiongan.pipelines.evaluation.nodes import (
    batched,
    catalog_captions,
    encode_texts,
    materialise,
    torch_threads,
)
from fashiongan.plotting import to_uint8
from fashiongan.text.captions import caption, modification_text
from fashiongan.training.runtime import pick_device

log = logging.getLogger(__name__)

KEY = ("label", "tone", "fit", "pattern")
METHODS = {
    "text": ("text", "synthetic", "fused"),
    "composed": ("image", "text", "synthetic", "fused"),
}
BASELINES = {"text": ("text",), "composed": ("image", "text")}


def draw_queries(items: pd.DataFrame, settings: dict[str, Any]) -> pd.DataFrame:
    """Targets, references and query texts.

    Args:
        items: one row per catalog item (position = id) with ``label``, ``tone``, ``fit``,
            ``pattern``.
        settings: ``seed``, ``n_queries`` and ``same_class_prob`` (share of references of the
            target's class).

    Returns:
        ``target``, ``reference`` (≠ target), ``text`` (a full caption of the target) and
        ``modification`` (reference → target) per query.
    """
    values = items[list(KEY)].to_numpy().astype(int)
    n = len(values)
    if n < 2:
        raise ValueError(f"retrieval needs a catalog of at least 2 items, got {n}")
    seed = int(settings["seed"])
    rng, text_rng, mod_rng = (random.Random(f"{seed}-{part}") for part in ("draw", "text", "mod"))
    targets = rng.sample(range(n), min(int(settings["n_queries"]), n))
    by_label = {label: np.flatnonzero(values[:, 0] == label) for label in set(values[:, 0])}
    rows = []
    for target in targets:
        same = rng.random() < float(settings.get("same_class_prob", 0.5))
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
    """Per query, the catalog ids whose (label, tone, fit, pattern) equals the target's."""
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
    """Standardise each query's similarities over the catalog (row-wise)."""
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


def evaluate_retrieval(
    generators: Mapping[str, Any],
    embedders: Mapping[str, Any],
    model_input: dict[str, torch.Tensor],
    captions: pd.DataFrame,
    params: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Figure]]:
    """Recall@1/10/50 and mAP of every retrieval method, per conditional model with an embedder.

    Args:
        generators: name → generator (loaders); only conditional ones with an embedder count.
        embedders: name → ``ImageEmbedder`` (``models/<name>/embedder.safetensors``).
        model_input: ``test_images`` (the catalog pictures).
        captions: the caption table; the test split holds each catalog item's attributes and
            its catalog text.
        params: the ``evaluation`` parameters (``retrieval`` block: ``seed``, ``n_queries``,
            ``n_images``, ``ks``, ``map_k``, ``same_class_prob``, ``n_examples``).

    Returns:
        Metrics (``settings`` and ``models`` → query kind → method → overall / per class, plus
        ``verdict``) and one example figure per model.
    """
    settings = params["retrieval"]
    wanted = params.get("models")
    names = [
        name
        for name in sorted(embedders)
        if name in generators and (wanted is None or name in wanted)
    ]
    if not names:
        return {"note": "no conditional model with an embedder: retrieval not evaluated"}, {}
    items = catalog_captions(captions)
    if len(items) != len(model_input["test_images"]):
        raise ValueError(
            f"{len(items)} test captions for {len(model_input['test_images'])} test images: "
            "rerun the caption step (train_gan's describe_items)"
        )
    keys = items[list(KEY)].to_numpy().astype(int)
    queries = draw_queries(items, settings)
    targets, references = queries["target"].tolist(), queries["reference"].tolist()
    ks = [int(k) for k in settings.get("ks", [1, 10, 50])]
    map_k = int(settings.get("map_k", 100))
    depth = max([*ks, map_k])
    relevant = {
        "text": relevant_sets(keys, targets),
        "composed": relevant_sets(keys, targets, exclude=references),
    }
    target_labels = keys[targets, 0]
    exclude = {"text": None, "composed": torch.tensor(references)}
    device = pick_device(params.get("device", "auto"))
    batch_size = int(params.get("batch_size", 500))
    n_images = int(settings.get("n_images", 4))
    images = model_input["test_images"]
    out: dict[str, Any] = {
        "settings": {
            "catalog": "Fashion-MNIST test set",
            "n_catalog": len(items),
            "n_queries": len(queries),
            "n_images_per_query": n_images,
            "ks": ks,
            "map_k": map_k,
            "relevance": "same class, tone, fit and pattern as the target",
            "mean_relevant_per_query": float(np.mean([len(r) for r in relevant["text"]])),
        },
        "models": {},
    }
    figures = {}
    with torch_threads(params.get("num_threads")):
        for name in names:
            generator = materialise(generators, [name])[name]
            if not isinstance(generator, ConditionalGenerator):
                log.info("%s has an embedder but is not a conditional generator: skipped", name)
                continue
            embedder = materialise(embedders, [name])[name].eval().to(device)
            generator = generator.eval().to(device)
            catalog = batched(embedder, images, batch_size=batch_size, device=device)
            catalog_text = encode_texts(generator.config, items["caption"].astype(str).tolist())
            query_text = {
                "text": encode_texts(generator.config, queries["text"].tolist()),
                "composed": encode_texts(generator.config, queries["modification"].tolist()),
            }
            seed = int(settings["seed"])
            synthetic = {
                "text": synthetic_queries(
                    generator, embedder, query_text["text"], None, n_images, seed, batch_size, device
                ),
                "composed": synthetic_queries(
                    generator, embedder, query_text["composed"], images[references],
                    n_images, seed, batch_size, device,
                ),
            }  # fmt: skip
            model_out: dict[str, Any] = {}
            ranked_synthetic = {}
            for kind in ("text", "composed"):
                sims = {
                    "text": query_text[kind] @ catalog_text.T,
                    "synthetic": synthetic[kind][0] @ catalog.T,
                }
                if kind == "composed":
                    sims["image"] = catalog[references] @ catalog.T
                sims["fused"] = zscore(sims["synthetic"]) + zscore(sims["text"])
                model_out[kind] = {}
                for method in METHODS[kind]:
                    ranked = rank(sims[method], depth, exclude[kind])
                    if method == "synthetic":
                        ranked_synthetic[kind] = ranked
                    model_out[kind][method] = scores_by_class(
                        ranked, relevant[kind], target_labels, ks, map_k
                    )
            model_out["verdict"] = verdict(model_out, ks, map_k)
            out["models"][name] = model_out
            figures[f"{name}_retrieval_examples.png"] = plot_retrieval_examples(
                queries, images, synthetic, ranked_synthetic, relevant, name,
                int(settings.get("n_examples", 3)),
            )  # fmt: skip
            generator.cpu()
            embedder.cpu()
    return out, figures


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


def plot_retrieval_examples(
    queries: pd.DataFrame,
    images: torch.Tensor,
    synthetic: dict[str, tuple[torch.Tensor, torch.Tensor]],
    ranked: dict[str, torch.Tensor],
    relevant: dict[str, list[set[int]]],
    name: str,
    n_examples: int,
    top: int = 5,
) -> Figure:
    """Rows: query (reference image for composed ones) → generated image → top-5 catalog items.

    Correct items (same class, tone, fit, pattern as the target) are framed green, others red.
    """
    rows = [("text", i) for i in range(min(n_examples, len(queries)))] + [
        ("composed", i) for i in range(min(n_examples, len(queries)))
    ]
    cols = 2 + top
    fig, axes = plt.subplots(
        len(rows), cols, figsize=(1.2 * cols + 2.6, 1.35 * len(rows)), squeeze=False
    )
    for r, (kind, q) in enumerate(rows):
        query = queries.iloc[q]
        ids = ranked[kind][q, :top].tolist()
        cells = [
            (images[int(query["reference"])] if kind == "composed" else None, "reference", None),
            (synthetic[kind][1][q], "generated", None),
        ] + [(images[i], f"#{i}", i in relevant[kind][q]) for i in ids]
        for c, ax in enumerate(axes[r]):
            ax.set_xticks([])
            ax.set_yticks([])
            image, label, correct = cells[c] if c < len(cells) else (None, "", None)
            if image is None:
                ax.axis("off")
                if c == 0:  # a text query: the query is the text
                    wrapped = textwrap.fill(str(query["text"]), 16)
                    ax.text(0.5, 0.5, wrapped, ha="center", va="center", fontsize=7)
                continue
            ax.imshow(to_uint8(image[None])[0].squeeze(-1).numpy(), cmap="gray", vmin=0, vmax=255)
            ax.set_xlabel(label, fontsize=6.5)
            if correct is not None:
                for spine in ax.spines.values():
                    spine.set_edgecolor("tab:green" if correct else "tab:red")
                    spine.set_linewidth(2.5)
        if kind == "composed":
            wrapped = textwrap.fill(f"+ {query['modification']}", 18)
            axes[r][0].set_ylabel(wrapped, fontsize=7, rotation=0, ha="right", va="center")
    fig.suptitle(
        f"{name}: query → generated image → top-{top} catalog items (green = correct)", fontsize=9
    )
    fig.tight_layout()
    return fig
