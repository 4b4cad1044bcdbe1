"""Nodes of the classifier pipeline: noisy product titles, their vocabulary, the multimodal
classifier and its image-only and text-only ablations, the comparison and its report.

Titles come from :mod:`fashiongan.text.titles` (the noise model is documented there); all three
models see the same images, titles, splits, optimiser (Adam), epochs and seed.
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from fashiongan.models.classifier import MODALITIES, ClassifierConfig, ProductClassifier
from fashiongan.attributes import assign, fit_thresholds
from fashiongan.text.titles import (
    NOISE_KINDS,
    build_titles,
    build_vocabulary,
    check_noise,
    encode_titles,
)
from fashiongan.training.epochs import fit_epochs
from fashiongan.training.runtime import pick_device, seed_everything
from fashiongan.training.tracking import log_metrics

SPLITS = ("train", "validation", "test")
LABELS = {"multimodal": "Multimodal (image + title)", "image": "Image only", "text": "Title only"}


def make_product_titles(
    model_input: dict[str, torch.Tensor], params: dict[str, Any]
) -> pd.DataFrame:
    """One noisy catalogue title per item of every split.

    Tone/fit/pattern cut points are fitted on the training split (``text.attributes``) and
    applied to all three; each split draws its titles from its own seed.

    Args:
        model_input: images and labels of the three splits.
        params: ``classifier.titles``: ``seed`` and ``noise`` rates.

    Returns:
        Columns ``split``, ``index`` (row in the split), ``label``, ``tone``, ``fit``,
        ``pattern``, ``noise_kind`` and ``title``.
    """
    thresholds = fit_thresholds(model_input["train_images"], model_input["train_labels"])
    frames = []
    for offset, split in enumerate(SPLITS):
        labels = model_input[f"{split}_labels"]
        attrs = assign(model_input[f"{split}_images"], labels, thresholds)
        titles, kinds = build_titles(labels, attrs, params["seed"] + offset, params["noise"])
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


def build_title_vocabulary(titles: pd.DataFrame, params: dict[str, Any]) -> dict[str, int]:
    """Word → id from the training titles only (``<pad>`` 0, ``<unk>`` 1)."""
    train = titles.loc[titles["split"] == "train", "title"].tolist()
    return build_vocabulary(train, min_count=params["min_count"])


def encode_product_titles(
    titles: pd.DataFrame, vocabulary: dict[str, int], params: dict[str, Any]
) -> dict[str, torch.Tensor]:
    """``<split>_tokens`` (N, max_len) int64, ``<split>_lengths`` and ``<split>_labels`` (N,)."""
    out: dict[str, torch.Tensor] = {}
    for split in SPLITS:
        rows = titles[titles["split"] == split].sort_values("index")
        tokens, lengths = encode_titles(rows["title"].tolist(), vocabulary, params["max_len"])
        out[f"{split}_tokens"], out[f"{split}_lengths"] = tokens, lengths
        out[f"{split}_labels"] = torch.as_tensor(rows["label"].to_numpy(), dtype=torch.int64)
    return out


def _split_inputs(
    model_input: dict[str, torch.Tensor], text_input: dict[str, torch.Tensor], split: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    labels = model_input[f"{split}_labels"]
    if not torch.equal(labels, text_input[f"{split}_labels"]):
        raise ValueError(
            f"the {split} titles do not belong to the {split} images (labels differ): "
            "rerun the classifier pipeline from make_product_titles"
        )
    return (
        model_input[f"{split}_images"],
        text_input[f"{split}_tokens"],
        text_input[f"{split}_lengths"],
        labels,
    )


def train_classifier(
    model_input: dict[str, torch.Tensor],
    text_input: dict[str, torch.Tensor],
    vocabulary: dict[str, int],
    params: dict[str, Any],
    modality: str,
) -> tuple[ProductClassifier, pd.DataFrame]:
    """Train one variant with Adam and categorical cross-entropy.

    Args:
        model_input: images and labels (``fashion_mnist_model_input``).
        text_input: encoded titles (:func:`encode_product_titles`).
        vocabulary: its size sets the embedding table.
        params: ``classifier.training`` (seed, epochs, batch_size, lr, model, checkpoint_dir, ...).
        modality: ``multimodal``, ``image`` or ``text``.

    Returns:
        The model (CPU, eval mode) and its per-epoch history (train/val loss and accuracy).
    """
    params = {**params, "modality": modality}  # fingerprinted: a checkpoint folder a modality
    rng = seed_everything(params["seed"])
    device = pick_device(params.get("device", "auto"))
    model_params = {k: tuple(v) if isinstance(v, list) else v for k, v in params["model"].items()}
    config = ClassifierConfig(modality=modality, vocab_size=len(vocabulary), **model_params)
    model = ProductClassifier(config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=params["lr"])
    train = [t.to(device) for t in _split_inputs(model_input, text_input, "train")]
    val = [t.to(device) for t in _split_inputs(model_input, text_input, "validation")]

    def batch_step(indices: torch.Tensor) -> dict[str, float]:
        images, tokens, lengths, labels = (t[indices.to(device)] for t in train)
        logits = model(images, tokens, lengths)
        loss = F.cross_entropy(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"loss": loss.item(), "accuracy": (logits.argmax(1) == labels).float().mean().item()}

    def validate() -> dict[str, float]:
        logits = _logits(model, *val[:3])
        labels = val[3].cpu()
        return {
            "loss": F.cross_entropy(logits, labels).item(),
            "accuracy": (logits.argmax(1) == labels).float().mean().item(),
        }

    history = fit_epochs(
        {"model": model},
        {"model": optimizer},
        rng,
        n_train=len(train[3]),
        batch_step=batch_step,
        validate=validate,
        params=params,
        name=f"classifier_{modality}",
    )
    return model.cpu().eval(), pd.DataFrame(history)


def train_multimodal_classifier(model_input, text_input, vocabulary, params):
    """The fused model (see :func:`train_classifier`)."""
    return train_classifier(model_input, text_input, vocabulary, params, "multimodal")


def train_image_classifier(model_input, text_input, vocabulary, params):
    """The image-only ablation (see :func:`train_classifier`)."""
    return train_classifier(model_input, text_input, vocabulary, params, "image")


def train_text_classifier(model_input, text_input, vocabulary, params):
    """The title-only ablation (see :func:`train_classifier`)."""
    return train_classifier(model_input, text_input, vocabulary, params, "text")


@torch.no_grad()
def _logits(
    model: ProductClassifier,
    images: torch.Tensor,
    tokens: torch.Tensor,
    lengths: torch.Tensor,
    batch_size: int = 1000,
) -> torch.Tensor:
    model.eval()
    return torch.cat(
        [
            model(*(t[start : start + batch_size] for t in (images, tokens, lengths))).cpu()
            for start in range(0, len(images), batch_size)
        ]
    )


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

    Also logged to MLflow as ``test/<modality>/<metric>``.

    Returns:
        ``models``: per modality, accuracy, macro precision/recall/F1, ``accuracy_by_title``
        (per noise outcome) and ``confusion`` (rows true, columns predicted);
        ``fusion_beats_both``: whether the multimodal model's accuracy and macro F1 are both
        above each ablation's; ``title_outcomes``: the test titles' outcome shares.
    """
    images, tokens, lengths, labels = _split_inputs(model_input, text_input, "test")
    kinds = titles[titles["split"] == "test"].sort_values("index")["noise_kind"].to_numpy()
    y = labels.numpy()
    results: dict[str, Any] = {"n_test": len(y), "models": {}}
    for modality, model in (("multimodal", multimodal), ("image", image), ("text", text)):
        predictions = _logits(model, images, tokens, lengths).argmax(1).numpy()
        scores = classification_scores(y, predictions)
        log_metrics({f"test/{modality}/{k}": v for k, v in scores.items()}, step=0)
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


def collect_histories(
    multimodal: pd.DataFrame, image: pd.DataFrame, text: pd.DataFrame
) -> dict[str, pd.DataFrame]:
    """The three training histories by modality."""
    return {"multimodal": multimodal, "image": image, "text": text}


def plot_classifiers(
    metrics: dict[str, Any], histories: dict[str, pd.DataFrame], class_names: list[str]
) -> tuple[dict[str, Figure], dict[str, Figure]]:
    """Confusion matrices and validation curves; returned twice (MLflow, reports/figures)."""
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
    return plots, plots


def write_classifier_report(
    metrics: dict[str, Any],
    histories: dict[str, pd.DataFrame],
    title_params: dict[str, Any],
    examples: pd.DataFrame,
    class_names: list[str],
    figures_dir: str,
) -> str:
    """``reports/classifier_comparison.md``: the seed's table for the three variants."""
    models = metrics["models"]
    lines = [
        "# Multimodal product classifier vs its ablations",
        "",
        "Generated by `kedro run --pipelines=classifier`. Same Fashion-MNIST images, same noisy "
        "product titles, same train/validation/test split, optimiser (Adam), epochs and seed for "
        f"all three; scores on the {metrics['n_test']} test items.",
        "",
        "| Model | Accuracy | Macro precision | Macro recall | Macro F1 |",
        "|---|---:|---:|---:|---:|",
    ]
    for modality in MODALITIES:
        m = models[modality]
        lines.append(
            f"| {LABELS[modality]} | {m['accuracy']:.4f} | {m['macro_precision']:.4f} "
            f"| {m['macro_recall']:.4f} | {m['macro_f1']:.4f} |"
        )
    fused, image, text = models["multimodal"], models["image"], models["text"]
    if metrics["fusion_beats_both"]:
        verdict = (
            f"**Fusion beats both ablations**: accuracy {fused['accuracy']:.4f} vs "
            f"{image['accuracy']:.4f} (image only) and {text['accuracy']:.4f} (title only); "
            f"macro F1 {fused['macro_f1']:.4f} vs {image['macro_f1']:.4f} and "
            f"{text['macro_f1']:.4f}."
        )
    else:
        verdict = (
            "**Fusion does NOT beat both ablations** on accuracy and macro F1 in this run: "
            f"accuracy {fused['accuracy']:.4f} vs {image['accuracy']:.4f} (image only) and "
            f"{text['accuracy']:.4f} (title only); macro F1 {fused['macro_f1']:.4f} vs "
            f"{image['macro_f1']:.4f} and {text['macro_f1']:.4f}."
        )
    noise = check_noise(title_params["noise"])
    shares = metrics["title_outcomes"]
    lines += [
        "",
        verdict,
        "",
        "## Accuracy by title noise outcome (test set)",
        "",
        "| Title's class word | Share | " + " | ".join(LABELS[m] for m in MODALITIES) + " |",
        "|---|---:|" + "---:|" * len(MODALITIES),
    ]
    for kind in NOISE_KINDS:
        if kind in fused["accuracy_by_title"]:
            row = " | ".join(f"{models[m]['accuracy_by_title'][kind]:.4f}" for m in MODALITIES)
            lines.append(f"| {kind} | {shares[kind]:.3f} | {row} |")
    lines += [
        "",
        "## Title noise model",
        "",
        "Titles are written by `fashiongan.text.titles` from the caption grammar's words (class "
        "nouns, tone/fit/pattern adjectives) plus class-independent brands and catalogue filler. "
        "Each title's class word is, exclusively: a wrong class's word (`misleading`, rate "
        f"{noise['misleading']:g}), left out (`drop_class_word`, {noise['drop_class_word']:g}), a "
        f"word shared by related classes such as *top* or *shoe* (`shared_word`, "
        f"{noise['shared_word']:g}), or one of the class's own synonyms (the rest, "
        f"{1 - noise['misleading'] - noise['drop_class_word'] - noise['shared_word']:g}). Each "
        f"attribute word is left out with probability {noise['attribute_drop']:g}; a brand "
        f"appears with probability {noise['brand']:g} and each of up to two filler phrases with "
        f"probability {noise['filler']:g}. Only the class word carries class information, so "
        "the title alone cannot be a giveaway.",
        "",
        "Examples (test set):",
        "",
        "| Class | Outcome | Title |",
        "|---|---|---|",
    ]
    for _, row in examples.iterrows():
        title = str(row["title"]).replace("|", "\\|")  # a literal bar inside a table cell
        lines.append(f"| {class_names[int(row['label'])]} | {row['noise_kind']} | {title} |")
    lines += [
        "",
        "## Training",
        "",
        "| Model | Epochs | Final val accuracy | Wall time (s) |",
        "|---|---:|---:|---:|",
    ]
    for modality, history in histories.items():
        last = history.iloc[-1]
        lines.append(
            f"| {LABELS[modality]} | {int(last['epoch'])} | {last['val_accuracy']:.4f} "
            f"| {last['elapsed_s']:.0f} |"
        )
    lines += [
        "",
        "The image branch is the small CNN: EfficientNet-B0 needs torchvision, which cannot be "
        "installed beside this project's pinned torch.",
        "",
        "## Figures",
        "",
        f"![Confusion matrices]({figures_dir}/classifier_confusion.png)",
        f"![Training curves]({figures_dir}/classifier_training_curves.png)",
    ]
    return "\n".join(lines) + "\n"


def title_examples(titles: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """A few test titles of each noise outcome for the report."""
    test = titles[titles["split"] == "test"]
    picked = [
        test[test["noise_kind"] == kind].head(params["examples_per_kind"]) for kind in NOISE_KINDS
    ]
    return pd.concat(picked)[["label", "noise_kind", "title"]]
