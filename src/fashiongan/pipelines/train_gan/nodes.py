"""Nodes of the GAN training pipelines: train, then summarise and plot what was trained.

Training itself lives in ``fashiongan.training`` (it checkpoints to disk so that an interrupted
run resumes); these nodes only pick inputs and shape outputs for the catalog.
"""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
import torch
from matplotlib.figure import Figure

from fashiongan.models.mlp_gan import MLPDiscriminator, MLPGenerator
from fashiongan.plotting import image_grid, loss_curves
from fashiongan.training.baseline import train_mlp_gan
from fashiongan.training.tracking import log_metrics


def train_baseline_gan(
    model_input: dict[str, torch.Tensor], training: dict[str, Any]
) -> tuple[MLPGenerator, MLPDiscriminator, pd.DataFrame, dict[str, float]]:
    """Train the seed's MLP GAN on the training split.

    Args:
        model_input: tensors from ``data_processing`` (``train_images`` in [-1, 1]).
        training: the ``baseline.training`` parameters.

    Returns:
        Generator, discriminator, the metric history (one row per ``log_every`` window) and a
        summary of the final window for DVC metrics.
    """
    started = time.perf_counter()
    generator, discriminator, history = train_mlp_gan(model_input["train_images"], training)
    frame = pd.DataFrame(history)
    return generator, discriminator, frame, summarise_training(frame, time.perf_counter() - started)


def summarise_training(history: pd.DataFrame, wall_time_s: float) -> dict[str, float]:
    """Final-window metrics and this invocation's wall time as a flat dict (also logged to MLflow).

    A resumed run's wall time counts only the part after the resume.
    """
    last = history.iloc[-1]
    summary = {f"final_{k}": float(v) for k, v in last.items() if k != "step"}
    summary["wall_time_s"] = round(wall_time_s, 2)
    log_metrics(summary, step=int(last["step"]))
    summary["iterations"] = int(last["step"])
    return summary


def plot_training(
    generator: MLPGenerator, history: pd.DataFrame, figures: dict[str, Any]
) -> tuple[dict[str, Figure], dict[str, Figure]]:
    """Sample grid from fixed noise and loss curves; returned twice (08_reporting, reports/figures)."""
    noise = torch.randn(
        figures["n_samples"],
        generator.config.noise_dim,
        generator=torch.Generator().manual_seed(figures["seed"]),
    )
    with torch.no_grad():
        samples = generator.eval()(noise)
    plots = {
        f"{figures['prefix']}_samples.png": image_grid(
            samples, ncols=figures["ncols"], title=figures["title"]
        ),
        f"{figures['prefix']}_loss_curves.png": loss_curves(history, title=figures["title"]),
    }
    return plots, plots
