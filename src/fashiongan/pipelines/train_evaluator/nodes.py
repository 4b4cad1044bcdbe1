"""Nodes of ``train_evaluator``: train the evaluator CNN on real images, test it, plot it.

The evaluator is the judge of every generator (its features feed FID/KID/precision/recall, its
predictions the conditional accuracy), so it trains on the real training split only and is
selected by validation accuracy; the test split is touched once, at the end.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from fashiongan.compute import torch_threads
from fashiongan.config import EvaluatorTraining
from fashiongan.evaluation.metrics import class_confusion
from fashiongan.models.evaluator import EvaluatorCNN
from fashiongan.plotting import confusion_figure
from fashiongan.training.checkpoint import for_variant
from fashiongan.training.evaluator import train_evaluator_cnn
from fashiongan.training.tracking import metric_records

logger = logging.getLogger(__name__)


def train_evaluator(
    model_input: dict[str, torch.Tensor], params: EvaluatorTraining, run_name: str
) -> tuple[EvaluatorCNN, pd.DataFrame]:
    """Train the evaluator on the training split; keep the epoch with the best validation accuracy.

    The test split stays untouched until :func:`evaluate_evaluator`, so the test accuracy is an
    honest estimate for the judge of every generator. ``num_threads`` applies to this node only
    (one thread is faster than two on a shared 2-core machine); the previous count is restored.

    Args:
        model_input: tensors from ``data_processing`` (images in [-1, 1], int64 labels).
        params: the ``evaluator.training`` parameters.
        run_name: the variant trained; it resumes only its own checkpoints.

    Returns:
        The selected model (CPU, eval mode) and one history row per epoch.
    """
    with torch_threads(params.num_threads):
        model, history = train_evaluator_cnn(model_input, for_variant(params, run_name))
    last = history[-1]
    logger.info(
        "evaluator: %d epochs, final train loss %.4f, best val accuracy %.4f (%.0f s)",
        last["epoch"],
        last["train_loss"],
        max(row["val_accuracy"] for row in history),
        last["elapsed_s"],
    )
    return model, pd.DataFrame(history)


def evaluate_evaluator(
    model: EvaluatorCNN,
    model_input: dict[str, torch.Tensor],
    history: pd.DataFrame,
    class_names: Sequence[str],
    eval_batch_size: int = 1000,
) -> tuple[dict[str, Any], torch.Tensor]:
    """Test accuracy overall and per class of the selected model.

    Returns:
        The metrics for ``data/08_reporting/evaluator/metrics.json`` and the test confusion
        matrix (rows = true class, columns = predicted).
    """
    _, predicted = model.predict(model_input["test_images"], batch_size=eval_batch_size)
    labels = model_input["test_labels"]
    confusion = class_confusion(labels, predicted, len(class_names))
    counts = confusion.double()
    per_class = (counts.diagonal() / counts.sum(1).clamp(min=1)).tolist()
    best = history.loc[history["val_accuracy"].idxmax()]  # the epoch train_evaluator kept
    metrics = {
        "test_accuracy": float((predicted == labels).double().mean()),
        "validation_accuracy": float(best["val_accuracy"]),
        "best_epoch": int(best["epoch"]),
        "epochs": int(history["epoch"].max()),
        "train_wall_time_s": round(float(history["elapsed_s"].iloc[-1]), 1),
        "n_test": len(labels),
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "feature_dim": model.config.feature_dim,
        "per_class_test_accuracy": dict(zip(class_names, per_class, strict=True)),
    }
    return metrics, confusion


def evaluator_mlflow_metrics(metrics: dict[str, Any]) -> dict[str, dict]:
    """The test metrics as MLflow shows them (``test_accuracy``, ``best_val_accuracy``,
    ``train_wall_time_s``, ``test_accuracy_class_<i>`` in class order) at the last epoch."""
    per_class = metrics["per_class_test_accuracy"].values()
    values = {
        "test_accuracy": metrics["test_accuracy"],
        "best_val_accuracy": metrics["validation_accuracy"],
        "train_wall_time_s": metrics["train_wall_time_s"],
        **{f"test_accuracy_class_{i}": acc for i, acc in enumerate(per_class)},
    }
    return metric_records(values, step=metrics["epochs"])


def training_curves_figure(history: pd.DataFrame) -> Figure:
    """Loss (left) and accuracy (right) per epoch, training vs validation."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    for split in ("train", "val"):
        left.plot(history["epoch"], history[f"{split}_loss"], marker="o", label=split)
        right.plot(history["epoch"], history[f"{split}_accuracy"], marker="o", label=split)
    left.set(xlabel="epoch", ylabel="cross-entropy", title="Evaluator: loss")
    right.set(xlabel="epoch", ylabel="accuracy", title="Evaluator: accuracy")
    for ax in (left, right):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend()
    fig.tight_layout()
    return fig


def plot_evaluator(
    confusion: torch.Tensor,
    history: pd.DataFrame,
    metrics: dict[str, Any],
    class_names: Sequence[str],
) -> dict[str, Figure]:
    """Confusion matrix on the test set and training curves (saved to reports/figures and MLflow)."""
    accuracy = metrics["test_accuracy"]
    plots = {
        "evaluator_confusion_matrix.png": confusion_figure(
            confusion, class_names, f"Evaluator on the test set (accuracy {accuracy:.2%})"
        ),
        "evaluator_training_curves.png": training_curves_figure(history),
    }
    return plots
