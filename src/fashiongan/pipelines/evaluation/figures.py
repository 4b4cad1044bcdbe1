"""Figures of the evaluation: loss curves, per-class samples, noise variation, interpolation, confusion."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from fashiongan.models.conditional_gan import ConditionalGenerator
from fashiongan.models.evaluator import EvaluatorCNN
from fashiongan.pipelines.evaluation.nodes import encode_texts, materialise
from fashiongan.plotting import image_grid, loss_curves
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


def confusion_figure(name: str, metrics: dict[str, Any], class_names: list[str]) -> Figure:
    """Requested vs evaluator class (row-normalised) for conditional models; the evaluator's class
    shares of the samples for unconditional ones."""
    if "confusion" in metrics:
        counts = torch.tensor(metrics["confusion"], dtype=torch.float64)
        rates = counts / counts.sum(1, keepdim=True).clamp(min=1)
        fig, ax = plt.subplots(figsize=(6.4, 5.6))
        image = ax.imshow(rates.numpy(), cmap="Blues", vmin=0, vmax=1)
        for i in range(len(rates)):
            for j in range(len(rates)):
                if rates[i, j] >= 0.005:
                    color = "white" if rates[i, j] > 0.6 else "black"
                    ax.text(
                        j,
                        i,
                        f"{rates[i, j]:.2f}",
                        ha="center",
                        va="center",
                        fontsize=6.5,
                        color=color,
                    )
        ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(len(class_names)), class_names, fontsize=7)
        ax.set(xlabel="evaluator's class", ylabel="requested class")
        mean = metrics.get("conditional_accuracy", {}).get("mean")
        ax.set_title(
            f"{name}: evaluator on generated images (mean accuracy {mean:.3f})", fontsize=9
        )
        fig.colorbar(image, ax=ax, fraction=0.046)
    else:
        fig, ax = plt.subplots(figsize=(6.4, 3.6))
        shares = metrics["predicted_class_share"]
        ax.bar(range(len(shares)), shares)
        ax.axhline(1 / len(shares), color="grey", linestyle="--", label="balanced")
        ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right", fontsize=7)
        ax.set(
            ylabel="share of samples", title=f"{name}: evaluator's class of unconditional samples"
        )
        ax.legend()
    fig.tight_layout()
    return fig


def plot_evaluation(
    generators: Mapping[str, Any],
    samples: Mapping[str, Any],
    histories: Mapping[str, Any],
    evaluator: EvaluatorCNN,
    model_metrics: dict[str, Any],
    retrieval_figures: dict[str, Figure],
    class_names: list[str],
    params: dict[str, Any],
) -> tuple[dict[str, Figure], dict[str, Figure]]:
    """All figures, ``<model>_<kind>.png``; returned twice (08_reporting + MLflow, reports/figures).

    Kinds: ``loss_curves`` (models with a training history), ``class_samples``,
    ``noise_variation`` (conditional), ``interpolation``, ``confusion``, and the retrieval
    node's ``retrieval_examples``.
    """
    settings = params.get("figures") or {}
    seed = int(settings.get("seed", 7))
    per_class = int(settings.get("per_class", 8))
    texts = list(settings.get("noise_captions", ["a dark ankle boot", "a light dress"]))
    plots: dict[str, Figure] = {}
    evaluator = evaluator.eval().cpu()
    for name, generator in materialise(generators, params.get("models")).items():
        generator = generator.eval().cpu()
        if name in histories:
            history = histories[name]() if callable(histories[name]) else histories[name]
            plots[f"{name}_loss_curves.png"] = loss_curves(history, title=name)
        images = samples[name]() if callable(samples[name]) else samples[name]
        plots[f"{name}_class_samples.png"] = class_grid(
            name, generator, images["images"], evaluator, class_names, per_class, seed
        )
        if isinstance(generator, ConditionalGenerator):
            plots[f"{name}_noise_variation.png"] = noise_variation(
                name, generator, texts, int(settings.get("n_noise", 8)), seed
            )
        plots[f"{name}_interpolation.png"] = interpolation(
            name, generator, texts, int(settings.get("interpolation_rows", 4)),
            int(settings.get("interpolation_steps", 8)), seed,
        )  # fmt: skip
        plots[f"{name}_confusion.png"] = confusion_figure(
            name, model_metrics["models"][name], class_names
        )
    plots.update(retrieval_figures)
    return plots, plots
