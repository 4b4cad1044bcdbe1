"""Nodes of the classifier pipeline: noisy product titles, their vocabulary, the multimodal
classifier and its image-only and text-only ablations, the comparison and its report.

Titles come from :mod:`fashiongan.text.titles` (the noise model is documented there); all three
models see the same images, titles, splits, optimiser (Adam), epochs and seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from fashiongan.config import ClassifierReport, ClassifierTraining, Titles, TitleText
from fashiongan.models.classifier import MODALITIES, ProductClassifier
from fashiongan.reporting import render
from fashiongan.text.titles import (
    NOISE_KINDS,
    build_titles,
    build_vocabulary,
    check_noise,
    encode_titles,
)
from fashiongan.training.checkpoint import for_variant
from fashiongan.training.classifier import classifier_logits, split_inputs, train_classifier
from fashiongan.training.tracking import metric_records

SPLITS = ("train", "validation", "test")
LABELS = {"multimodal": "Multimodal (image + title)", "image": "Image only", "text": "Title only"}
_ATTRIBUTES = ("tone", "fit", "pattern")


def make_product_titles(
    model_input: dict[str, torch.Tensor], attributes: dict[str, torch.Tensor], params: Titles
) -> pd.DataFrame:
    """One noisy catalogue title per item of every split.

    The tone/fit/pattern words come from ``fashion_mnist_attributes`` (the ``captions``
    pipeline: cut points fitted on the training split), so titles and captions describe an
    item alike; each split draws its titles from its own seed.

    Args:
        model_input: labels of the three splits.
        attributes: ``<split>_tone``, ``<split>_fit``, ``<split>_pattern`` (N,) per split.
        params: ``classifier.titles``: ``seed`` and ``noise`` rates.

    Returns:
        Columns ``split``, ``index`` (row in the split), ``label``, ``tone``, ``fit``,
        ``pattern``, ``noise_kind`` and ``title``.
    """
    frames = []
    for offset, split in enumerate(SPLITS):
        labels = model_input[f"{split}_labels"]
        attrs = {name: attributes[f"{split}_{name}"] for name in _ATTRIBUTES}
        titles, kinds = build_titles(labels, attrs, params.seed + offset, params.noise.model_dump())
        frames.append(
            pd.DataFrame(
                {
                    "split": split,
                    "index": np.arange(len(labels)),
                    "label": labels.numpy(),
                    **{name: values.numpy() for name, values in attrs.items()},
                    "noise_kind": kinds,
                    "title": titles,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def build_title_vocabulary(titles: pd.DataFrame, params: TitleText) -> dict[str, int]:
    """Word → id from the training titles only (``<pad>`` 0, ``<unk>`` 1): no test leakage."""
    train = titles.loc[titles["split"] == "train", "title"].tolist()
    return build_vocabulary(train, min_count=params.min_count)


def encode_product_titles(
    titles: pd.DataFrame, vocabulary: dict[str, int], params: TitleText
) -> dict[str, torch.Tensor]:
    """``<split>_tokens`` (N, max_len) int64, ``<split>_lengths`` and ``<split>_labels`` (N,)."""
    out: dict[str, torch.Tensor] = {}
    for split in SPLITS:
        rows = titles[titles["split"] == split].sort_values("index")
        tokens, lengths = encode_titles(rows["title"].tolist(), vocabulary, params.max_len)
        out[f"{split}_tokens"], out[f"{split}_lengths"] = tokens, lengths
        out[f"{split}_labels"] = torch.as_tensor(rows["label"].to_numpy(), dtype=torch.int64)
    return out


def train_multimodal_classifier(
    model_input: dict[str, torch.Tensor],
    text_input: dict[str, torch.Tensor],
    vocabulary: dict[str, int],
    params: ClassifierTraining,
    run_name: str,
) -> tuple[ProductClassifier, pd.DataFrame]:
    """The fused model: image CNN and title LSTM into one head (see :func:`train_classifier`)."""
    model, history = train_classifier(
        model_input, text_input, len(vocabulary), for_variant(params, run_name), "multimodal"
    )
    return model, pd.DataFrame(history)


def train_image_classifier(
    model_input: dict[str, torch.Tensor],
    text_input: dict[str, torch.Tensor],
    vocabulary: dict[str, int],
    params: ClassifierTraining,
    run_name: str,
) -> tuple[ProductClassifier, pd.DataFrame]:
    """The image-only ablation: what the pictures alone achieve."""
    model, history = train_classifier(
        model_input, text_input, len(vocabulary), for_variant(params, run_name), "image"
    )
    return model, pd.DataFrame(history)


def train_text_classifier(
    model_input: dict[str, torch.Tensor],
    text_input: dict[str, torch.Tensor],
    vocabulary: dict[str, int],
    params: ClassifierTraining,
    run_name: str,
) -> tuple[ProductClassifier, pd.DataFrame]:
    """The title-only ablation: what the noisy titles alone achieve."""
    model, history = train_classifier(
        model_input, text_input, len(vocabulary), for_variant(params, run_name), "text"
    )
    return model, pd.DataFrame(history)


def classification_scores(labels: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
    """Accuracy and macro-averaged precision, recall and F1 (classes absent from both count 0)."""
    precision, recall, f1, _ = precision_recall_fscore_support(
        labels, predictions, average="macro", zero_division=0
    )
    return {
        "accuracy": float((labels == predictions).mean()),
        "macro_precision": float(precision),
        "macro_recall": float(recall),
        "macro_f1": float(f1),
    }


def evaluate_classifiers(
    model_input: dict[str, torch.Tensor],
    text_input: dict[str, torch.Tensor],
    titles: pd.DataFrame,
    multimodal: ProductClassifier,
    image: ProductClassifier,
    text: ProductClassifier,
) -> dict[str, Any]:
    """Test-set scores of the three variants, overall and by title noise outcome.

    Returns:
        ``models``: per modality, accuracy, macro precision/recall/F1, ``accuracy_by_title``
        (per noise outcome) and ``confusion`` (rows true, columns predicted);
        ``fusion_beats_both``: whether the multimodal model's accuracy and macro F1 are both
        above each ablation's; ``title_outcomes``: the test titles' outcome shares.
    """
    images, tokens, lengths, labels = split_inputs(model_input, text_input, "test")
    kinds = titles[titles["split"] == "test"].sort_values("index")["noise_kind"].to_numpy()
    y = labels.numpy()
    results: dict[str, Any] = {"n_test": len(y), "models": {}}
    for modality, model in (("multimodal", multimodal), ("image", image), ("text", text)):
        predictions = classifier_logits(model, images, tokens, lengths).argmax(1).numpy()
        scores = classification_scores(y, predictions)
        scores["accuracy_by_title"] = {
            kind: float((predictions[kinds == kind] == y[kinds == kind]).mean())
            for kind in NOISE_KINDS
            if (kinds == kind).any()
        }
        scores["confusion"] = confusion_matrix(y, predictions, labels=range(10)).tolist()
        results["models"][modality] = scores
    fused = results["models"]["multimodal"]
    results["fusion_beats_both"] = all(
        fused[metric] > results["models"][other][metric]
        for other in ("image", "text")
        for metric in ("accuracy", "macro_f1")
    )
    results["title_outcomes"] = {kind: float((kinds == kind).mean()) for kind in NOISE_KINDS}
    return results


def classifier_mlflow_metrics(metrics: dict[str, Any]) -> dict[str, dict]:
    """Each variant's overall test scores as ``test/<modality>/<metric>`` at step 0 (accuracy,
    macro precision/recall/F1; the per-title and confusion tables stay in the JSON)."""
    return metric_records(
        {
            f"test/{modality}/{name}": value
            for modality, scores in metrics["models"].items()
            for name, value in scores.items()
            if not isinstance(value, dict | list)
        }
    )


def plot_classifiers(
    metrics: dict[str, Any], histories: dict[str, pd.DataFrame], class_names: Sequence[str]
) -> dict[str, Figure]:
    """Confusion matrices and validation curves (saved to reports/figures and MLflow)."""
    fig_cm, axes = plt.subplots(1, len(MODALITIES), figsize=(6 * len(MODALITIES), 5.4))
    for ax, modality in zip(axes, MODALITIES, strict=True):
        matrix = np.asarray(metrics["models"][modality]["confusion"], dtype=float)
        normalised = matrix / matrix.sum(1, keepdims=True).clip(min=1)
        ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
        for (row, col), value in np.ndenumerate(normalised):
            if value >= 0.01:
                color = "white" if value > 0.5 else "black"
                ax.text(col, row, f"{value:.2f}", ha="center", va="center", fontsize=6, color=color)
        ticks = range(len(class_names))
        ax.set_xticks(ticks, class_names, rotation=60, ha="right", fontsize=7)
        ax.set_yticks(ticks, class_names, fontsize=7)
        accuracy = metrics["models"][modality]["accuracy"]
        ax.set(title=f"{LABELS[modality]}: accuracy {accuracy:.3f}", xlabel="predicted")
    axes[0].set_ylabel("true")
    fig_cm.tight_layout()

    fig_curves, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 3.8))
    for modality, history in histories.items():
        for ax, metric in ((ax_loss, "loss"), (ax_acc, "accuracy")):
            line = ax.plot(history["epoch"], history[f"val_{metric}"], marker="o")[0]
            ax.plot(
                history["epoch"],
                history[f"train_{metric}"],
                linestyle="--",
                color=line.get_color(),
                label=f"{modality} (train, dashed)",
            )
            line.set_label(f"{modality} (validation)")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="Loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="Accuracy")
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_acc.legend(fontsize=7)
    fig_curves.tight_layout()
    plots = {"classifier_confusion.png": fig_cm, "classifier_training_curves.png": fig_curves}
    return plots


def write_classifier_report(
    metrics: dict[str, Any],
    histories: dict[str, pd.DataFrame],
    params: Titles,
    examples: pd.DataFrame,
    class_names: Sequence[str],
    figures_dir: str,
) -> str:
    """``reports/classifier_comparison.md``: the reference notebook's table for the three variants.

    The verdict says whether fusion beats both ablations on accuracy and macro F1, in words, so
    a run where it does not is reported as such rather than hidden in the numbers.
    """
    finals = [(modality, history.iloc[-1]) for modality, history in histories.items()]
    return render(
        "classifier_comparison.md.j2",
        n_test=metrics["n_test"],
        models=metrics["models"],
        fusion_beats_both=metrics["fusion_beats_both"],
        title_outcomes=metrics["title_outcomes"],
        modalities=MODALITIES,
        labels=LABELS,
        noise_kinds=NOISE_KINDS,
        noise=check_noise(params.noise.model_dump()),
        examples=[
            {
                "class_name": class_names[int(row["label"])],
                "noise_kind": row["noise_kind"],
                "title": str(row["title"]),
            }
            for _, row in examples.iterrows()
        ],
        training=[
            {
                "modality": modality,
                "epoch": int(last["epoch"]),
                "val_accuracy": last["val_accuracy"],
                "elapsed_s": last["elapsed_s"],
            }
            for modality, last in finals
        ],
        figures_dir=figures_dir,
    )


def title_examples(titles: pd.DataFrame, params: ClassifierReport) -> pd.DataFrame:
    """A few test titles of each noise outcome for the report."""
    test = titles[titles["split"] == "test"]
    picked = [
        test[test["noise_kind"] == kind].head(params.examples_per_kind) for kind in NOISE_KINDS
    ]
    return pd.concat(picked)[["label", "noise_kind", "title"]]
