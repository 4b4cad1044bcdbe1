"""Figures of the evaluation: loss curves, per-class samples, noise variation, interpolation,
confusion and retrieval examples. Pure: each returns a Figure; the node saves them once."""

from __future__ import annotations

import random
import textwrap
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import torch
from matplotlib.figure import Figure

from fashiongan.config import EvaluationFigures
from fashiongan.evaluation.retrieval import ModelRetrieval, RetrievalProtocol
from fashiongan.evaluation.sampling import encode_texts
from fashiongan.models.conditional_gan import ConditionalGenerator
from fashiongan.models.evaluator import EvaluatorCNN
from fashiongan.pixels import to_uint8
from fashiongan.plotting import confusion_figure, image_grid, loss_curves
from fashiongan.text.captions import caption


@torch.no_grad()
def _draw(generator: torch.nn.Module, z: torch.Tensor, texts: list[str] | None) -> torch.Tensor:
    generator = generator.eval()
    if isinstance(generator, ConditionalGenerator):
        return generator(z, encode_texts(generator.config, texts or []))
    return generator(z)


def _noise(n: int, dim: int, seed: int) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))


def class_grid(
    name: str,
    generator: torch.nn.Module,
    images: torch.Tensor,
    evaluator: EvaluatorCNN,
    class_names: list[str],
    per_class: int,
    seed: int,
) -> Figure:
    """One row per class: generated from a caption naming the class (conditional models), or the
    model's samples sorted into rows by the evaluator's class (unconditional ones; a short row
    shows the class is rarely generated)."""
    n_classes = len(class_names)
    if isinstance(generator, ConditionalGenerator):
        rng = random.Random(seed)
        texts = [caption(label, None, None, None, rng) for label in range(n_classes)]
        z = _noise(per_class, generator.config.noise_dim, seed).repeat(n_classes, 1)
        grid = _draw(generator, z, [t for t in texts for _ in range(per_class)])
        labels = [f"{class_names[i]}: {texts[i]}" for i in range(n_classes)]
        return image_grid(
            grid, ncols=per_class, row_labels=labels, title=f"{name}: one row a class"
        )
    pool = images[: 100 * per_class * n_classes]
    _, preds = evaluator.predict(pool)
    blank = torch.full_like(images[:1], 0.2)  # grey: no sample of this class
    rows, labels = [], []
    for label in range(n_classes):
        found = pool[preds == label][:per_class]
        rows.append(torch.cat([found, blank.expand(per_class - len(found), -1, -1, -1)]))
        labels.append(f"{class_names[label]} ({float((preds == label).double().mean()):.1%})")
    title = f"{name}: samples by the evaluator's class (share of {len(pool)}; grey = none)"
    return image_grid(torch.cat(rows), ncols=per_class, row_labels=labels, title=title)


def noise_variation(
    name: str, generator: ConditionalGenerator, texts: list[str], n_noise: int, seed: int
) -> Figure:
    """Each row one caption, each column another noise draw (the same draws in every row)."""
    z = _noise(n_noise, generator.config.noise_dim, seed).repeat(len(texts), 1)
    grid = _draw(generator, z, [t for t in texts for _ in range(n_noise)])
    return image_grid(
        grid, ncols=n_noise, row_labels=texts, title=f"{name}: same caption, new noise"
    )


def interpolation(
    name: str, generator: torch.nn.Module, texts: list[str], n_rows: int, steps: int, seed: int
) -> Figure:
    """Linear paths between two noise vectors, ``steps`` images a row (a caption a row if
    conditional)."""
    conditional = isinstance(generator, ConditionalGenerator)
    rows = len(texts) if conditional else n_rows
    ends = _noise(2 * rows, generator.config.noise_dim, seed).view(rows, 2, -1)
    t = torch.linspace(0, 1, steps).view(1, steps, 1)
    z = (ends[:, :1] * (1 - t) + ends[:, 1:] * t).reshape(rows * steps, -1)  # (rows·steps, dim)
    row_texts = [text for text in texts for _ in range(steps)] if conditional else None
    grid = _draw(generator, z, row_texts)
    labels = texts if conditional else [f"pair {i + 1}" for i in range(rows)]
    return image_grid(grid, ncols=steps, row_labels=labels, title=f"{name}: latent interpolation")


def class_figure(name: str, metrics: dict[str, Any], class_names: list[str]) -> Figure:
    """Requested vs evaluator class (row shares) for conditional models; the evaluator's class
    shares of the samples for unconditional ones."""
    if "confusion" in metrics:
        mean = metrics.get("conditional_accuracy", {}).get("mean")
        return confusion_figure(
            metrics["confusion"], class_names,
            title=f"{name}: evaluator on generated images (mean accuracy {mean:.3f})",
            xlabel="evaluator's class", ylabel="requested class", cells="shares",
        )  # fmt: skip
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    shares = metrics["predicted_class_share"]
    ax.bar(range(len(shares)), shares)
    ax.axhline(1 / len(shares), color="grey", linestyle="--", label="balanced")
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right", fontsize=7)
    ax.set(ylabel="share of samples", title=f"{name}: evaluator's class of unconditional samples")
    ax.legend()
    fig.tight_layout()
    return fig


def model_figures(
    name: str,
    generator: torch.nn.Module,
    samples: dict[str, torch.Tensor],
    history: pd.DataFrame | None,
    evaluator: EvaluatorCNN,
    metrics: dict[str, Any],
    class_names: list[str],
    settings: EvaluationFigures,
) -> dict[str, Figure]:
    """One model's figures, ``<name>_<kind>.png``: ``loss_curves`` (with a training history),
    ``class_samples``, ``noise_variation`` (conditional), ``interpolation``, ``confusion``."""
    seed, texts = settings.seed, list(settings.noise_captions)
    plots: dict[str, Figure] = {}
    if history is not None:
        plots[f"{name}_loss_curves.png"] = loss_curves(history, title=name)
    plots[f"{name}_class_samples.png"] = class_grid(
        name, generator, samples["images"], evaluator, class_names, settings.per_class, seed
    )
    if isinstance(generator, ConditionalGenerator):
        plots[f"{name}_noise_variation.png"] = noise_variation(
            name, generator, texts, settings.n_noise, seed
        )
    plots[f"{name}_interpolation.png"] = interpolation(
        name, generator, texts, settings.interpolation_rows, settings.interpolation_steps, seed
    )
    plots[f"{name}_confusion.png"] = class_figure(name, metrics, class_names)
    return plots


def plot_retrieval_examples(
    name: str,
    protocol: RetrievalProtocol,
    result: ModelRetrieval,
    images: torch.Tensor,
    n_examples: int,
    top: int = 5,
) -> Figure:
    """Rows: query (reference image for composed ones) → generated image → top-5 catalog items.

    Correct items (same class, tone, fit, pattern as the target) are framed green, others red.
    """
    queries, relevant = protocol.queries, protocol.relevant
    synthetic, ranked = result.synthetic, result.ranked_synthetic
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
