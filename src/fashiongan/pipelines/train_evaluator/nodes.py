"""Nodes of ``train_evaluator``: train the evaluator CNN on real images, test it, plot it.

The evaluator is the judge of every generator (its features feed FID/KID/precision/recall, its
predictions the conditional accuracy), so it trains on the real training split only and is
selected by validation accuracy; the test split is touched once, at the end.
"""

from __future__ import annotations

import copy
import logging
import time
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from fashiongan.evaluation.metrics import class_confusion
from fashiongan.models.evaluator import EvaluatorCNN, EvaluatorConfig
from fashiongan.training.runtime import check_finite, pick_device, seed_everything
from fashiongan.training.tracking import log_metrics

logger = logging.getLogger(__name__)


def _config(model: dict[str, Any]) -> EvaluatorConfig:
    return EvaluatorConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in model.items()})


@torch.no_grad()
def _loss_and_accuracy(
    model: EvaluatorCNN, images: torch.Tensor, labels: torch.Tensor, batch_size: int
) -> tuple[float, float]:
    model.eval()
    device = next(model.parameters()).device
    loss_sum, correct = 0.0, 0
    for start in range(0, len(images), batch_size):
        logits = model(images[start : start + batch_size].to(device))
        target = labels[start : start + batch_size].to(device)
        loss_sum += F.cross_entropy(logits, target, reduction="sum").item()
        correct += (logits.argmax(1) == target).sum().item()
    return loss_sum / len(images), correct / len(images)


def train_evaluator(
    model_input: dict[str, torch.Tensor], training: dict[str, Any]
) -> tuple[EvaluatorCNN, pd.DataFrame]:
    """Train the evaluator on the training split; keep the epoch with the best validation accuracy.

    AdamW with a one-cycle learning rate over all epochs; optional random horizontal flips.
    Deterministic for a seed on the CPU (same thread count).

    Args:
        model_input: tensors from ``data_processing`` (images in [-1, 1], int64 labels).
        training: the ``evaluator.training`` parameters.

    Returns:
        The selected model (CPU, eval mode) and one history row per epoch. ``num_threads``
        applies to this node only; the previous torch thread count is restored.
    """
    threads = torch.get_num_threads()
    if training.get("num_threads"):
        torch.set_num_threads(int(training["num_threads"]))
    try:
        return _fit(model_input, training)
    finally:
        torch.set_num_threads(threads)


def _fit(
    model_input: dict[str, torch.Tensor], training: dict[str, Any]
) -> tuple[EvaluatorCNN, pd.DataFrame]:
    rng = seed_everything(training["seed"])
    device = pick_device(training.get("device", "auto"))
    model = EvaluatorCNN(_config(training["model"])).to(device)
    images, labels = model_input["train_images"], model_input["train_labels"]
    batch_size = min(training["batch_size"], len(images))
    steps_per_epoch = len(images) // batch_size  # the last partial batch is dropped
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=training["lr"], weight_decay=training["weight_decay"]
    )
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=training["lr"],
        total_steps=training["epochs"] * steps_per_epoch,
        pct_start=training.get("warmup_fraction", 0.25),
    )
    best_accuracy, best_state, history = -1.0, None, []
    started = time.perf_counter()
    for epoch in range(1, training["epochs"] + 1):
        model.train()
        order = torch.randperm(len(images), generator=rng)
        loss_sum, correct = 0.0, 0
        for step in range(steps_per_epoch):
            index = order[step * batch_size : (step + 1) * batch_size]
            x, y = images[index], labels[index]  # (B, 1, 28, 28), (B,)
            if training.get("hflip", False):
                flip = torch.rand(len(x), generator=rng) < 0.5
                x = torch.where(flip[:, None, None, None], x.flip(3), x)
            x, y = x.to(device), y.to(device)
            logits = model(x)
            loss = F.cross_entropy(logits, y, label_smoothing=training.get("label_smoothing", 0.0))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            loss_sum += loss.item()
            correct += (logits.argmax(1) == y).sum().item()
        check_finite(epoch, train_loss=loss_sum)
        val_loss, val_accuracy = _loss_and_accuracy(
            model,
            model_input["validation_images"],
            model_input["validation_labels"],
            training["eval_batch_size"],
        )
        row = {
            "step": epoch,
            "train_loss": loss_sum / steps_per_epoch,
            "val_loss": val_loss,
            "train_accuracy": correct / (steps_per_epoch * batch_size),
            "val_accuracy": val_accuracy,
            "elapsed_s": time.perf_counter() - started,
        }
        history.append(row)
        logger.info(
            "evaluator epoch %d/%d: train loss %.4f, val accuracy %.4f (%.0f s)",
            epoch,
            training["epochs"],
            row["train_loss"],
            val_accuracy,
            row["elapsed_s"],
        )
        log_metrics({k: v for k, v in row.items() if k != "step"}, step=epoch)
        if val_accuracy > best_accuracy:
            best_accuracy, best_state = val_accuracy, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return model.cpu().eval(), pd.DataFrame(history)


def evaluate_evaluator(
    model: EvaluatorCNN,
    model_input: dict[str, torch.Tensor],
    history: pd.DataFrame,
    class_names: list[str],
    eval_batch_size: int = 1000,
) -> tuple[dict[str, Any], torch.Tensor]:
    """Test accuracy overall and per class of the selected model (also logged to MLflow).

    Returns:
        The metrics for ``data/08_reporting/evaluator/metrics.json`` and the test confusion
        matrix (rows = true class, columns = predicted).
    """
    _, predicted = model.predict(model_input["test_images"], batch_size=eval_batch_size)
    labels = model_input["test_labels"]
    confusion = class_confusion(labels, predicted, len(class_names))
    counts = confusion.double()
    per_class = (counts.diagonal() / counts.sum(1).clamp(min=1)).tolist()
    best = history.loc[history["val_accuracy"].idxmax()]
    metrics = {
        "test_accuracy": float((predicted == labels).double().mean()),
        "validation_accuracy": float(best["val_accuracy"]),
        "best_epoch": int(best["step"]),
        "epochs": int(history["step"].max()),
        "train_wall_time_s": round(float(history["elapsed_s"].iloc[-1]), 1),
        "n_test": len(labels),
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "feature_dim": model.config.feature_dim,
        "per_class_test_accuracy": dict(zip(class_names, per_class, strict=True)),
    }
    log_metrics(
        {
            "test_accuracy": metrics["test_accuracy"],
            "best_val_accuracy": metrics["validation_accuracy"],
            "train_wall_time_s": metrics["train_wall_time_s"],
            **{f"test_accuracy_class_{i}": acc for i, acc in enumerate(per_class)},
        },
        step=metrics["epochs"],
    )
    return metrics, confusion


def confusion_figure(
    confusion: torch.Tensor, class_names: list[str], title: str = "Confusion matrix"
) -> Figure:
    """Row-normalised confusion matrix (rows = true/requested class) with the counts written in."""
    counts = confusion.double()
    rates = counts / counts.sum(1, keepdim=True).clamp(min=1)
    n = len(class_names)
    fig, ax = plt.subplots(figsize=(0.75 * n + 2.5, 0.75 * n + 1.5))
    image = ax.imshow(rates.numpy(), cmap="Blues", vmin=0, vmax=1)
    for row in range(n):
        for col in range(n):
            if counts[row, col] > 0:
                ax.text(
                    col,
                    row,
                    f"{int(counts[row, col])}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if rates[row, col] > 0.5 else "black",
                )
    ax.set_xticks(range(n), class_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), class_names, fontsize=8)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the row")
    fig.tight_layout()
    return fig


def training_curves_figure(history: pd.DataFrame) -> Figure:
    """Loss (left) and accuracy (right) per epoch, training vs validation."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    for split in ("train", "val"):
        left.plot(history["step"], history[f"{split}_loss"], marker="o", label=split)
        right.plot(history["step"], history[f"{split}_accuracy"], marker="o", label=split)
    left.set(xlabel="epoch", ylabel="cross-entropy", title="Evaluator: loss")
    right.set(xlabel="epoch", ylabel="accuracy", title="Evaluator: accuracy")
    for ax in (left, right):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend()
    fig.tight_layout()
    return fig


def plot_evaluator(
    confusion: torch.Tensor, history: pd.DataFrame, metrics: dict[str, Any], class_names: list[str]
) -> tuple[dict[str, Figure], dict[str, Figure]]:
    """Confusion matrix on the test set and training curves; returned twice (MLflow, reports/)."""
    accuracy = metrics["test_accuracy"]
    plots = {
        "evaluator_confusion_matrix.png": confusion_figure(
            confusion, class_names, title=f"Evaluator on the test set (accuracy {accuracy:.2%})"
        ),
        "evaluator_training_curves.png": training_curves_figure(history),
    }
    return plots, plots
