"""Score every model's samples with the evaluator CNN (and its discriminator), beside two references.

Each model is compared with the evaluated Fashion-MNIST test items, and so are two reference rows:
the *floor* (real training images: what a perfect generator would score at this N) and *noise*
(uniform noise images). Distribution metrics use the evaluator's penultimate features (fast,
Fashion-MNIST-specific); every number says which extractor and N it comes from.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch

from fashiongan.attributes import assign
from fashiongan.config import EvaluationParams
from fashiongan.evaluation.discriminator import (
    loss_kind,
    score_discriminator,
    train_caption_features,
)
from fashiongan.evaluation.metrics import (
    class_confusion,
    conditional_accuracy,
    distribution_metrics,
)
from fashiongan.evaluation.sampling import caption_texts, requested_attributes
from fashiongan.models.conditional_gan import ConditionalDiscriminator
from fashiongan.models.evaluator import EvaluatorCNN
from fashiongan.text.captions import ATTRIBUTES

REFERENCE_ROWS = ("floor", "noise")
EVALUATOR_EXTRACTOR = "evaluator CNN penultimate layer"


def json_safe(value: Any) -> Any:
    """JSON-safe: NaN/inf → None, floats rounded to 6 digits, recursively."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else None
    return value


def feature_distances(
    real_feats: torch.Tensor, fake_feats: torch.Tensor, params: EvaluationParams
) -> dict[str, float]:
    """FID, KID (mean, std) and k-NN precision/recall/density/coverage of two feature sets."""
    out = distribution_metrics(
        real_feats,
        fake_feats,
        k=params.prdc_k,
        kid_subsets=params.kid_subsets,
        kid_subset_size=params.kid_subset_size,
    )
    del out["n_real"], out["n_fake"]  # N is in the settings, the same for every row
    return out


def attribute_accuracy(
    images: torch.Tensor,
    labels: torch.Tensor,
    requested: Mapping[str, torch.Tensor],
    attributes: dict[str, torch.Tensor],
) -> dict[str, float]:
    """Share of asked-for attributes the images show, measured by the caption grammar's functions.

    Args:
        images: (N, C, H, W) in [-1, 1].
        labels: the class each image was asked to be (cut points are per class).
        requested: ``tone``, ``fit``, ``pattern`` (N,) values asked for, -1 where not asked.
        attributes: the cut points (``fashion_mnist_attributes``).

    Returns:
        ``tone``, ``fit``, ``pattern`` accuracies (NaN where never asked), their mean
        (``mean``) and how many images asked for each (``n_tone`` …).
    """
    measured = assign(images, labels, attributes)
    out: dict[str, float] = {}
    for name in ATTRIBUTES:
        asked = requested[name] >= 0
        out[f"n_{name}"] = int(asked.sum())
        out[name] = (
            float((measured[name][asked] == requested[name][asked]).double().mean())
            if asked.any()
            else float("nan")
        )
    values = torch.tensor([out[name] for name in ATTRIBUTES], dtype=torch.float64)
    out["mean"] = float(values.nanmean()) if not values.isnan().all() else float("nan")
    return out


def class_share(preds: torch.Tensor, n_classes: int) -> list[float]:
    """Share of the images the evaluator puts in each class (mode collapse shows here)."""
    counts = torch.bincount(preds.long(), minlength=n_classes).double()
    return (counts / counts.sum()).tolist()


@dataclass(frozen=True)
class References:
    """The reference rows' images and which training items the floor took."""

    train_index: torch.Tensor  # (N,) positions in the training split
    images: dict[str, torch.Tensor]  # floor, noise: (N, C, H, W) in [-1, 1]


def reference_images(model_input: dict[str, torch.Tensor], n: int, seed: int) -> References:
    """``n`` random real training images (floor) and ``n`` uniform noise images, from ``seed + 1``."""
    draw = torch.Generator().manual_seed(seed + 1)
    train_index = torch.randperm(len(model_input["train_images"]), generator=draw)[:n]
    floor = model_input["train_images"][train_index]
    shape = (n, *model_input["test_images"].shape[1:])
    return References(
        train_index, {"floor": floor, "noise": torch.rand(shape, generator=draw) * 2 - 1}
    )


@dataclass(frozen=True)
class EvaluatedItems:
    """The evaluated test items as the evaluator sees them: every row is compared with these."""

    images: torch.Tensor  # (N, C, H, W)
    labels: torch.Tensor  # (N,) true classes
    feats: torch.Tensor  # (N, D) evaluator features
    preds: torch.Tensor  # (N,) evaluator classes
    asked: dict[str, torch.Tensor]  # tone / fit / pattern their captions ask for (-1: not)
    n_classes: int


def evaluated_items(
    evaluator: EvaluatorCNN,
    model_input: dict[str, torch.Tensor],
    index: torch.Tensor,
    captions: pd.DataFrame,
    batch_size: int,
) -> EvaluatedItems:
    """The test items at ``index`` with the evaluator's view of them and their captions' asks."""
    images = model_input["test_images"][index]
    feats, preds = evaluator.predict(images, batch_size)
    return EvaluatedItems(
        images=images,
        labels=model_input["test_labels"].long()[index],
        feats=feats,
        preds=preds,
        asked=requested_attributes(caption_texts(captions, index)),
        n_classes=int(evaluator.config.n_classes),
    )


def score_reference(
    row: str,
    images: torch.Tensor,
    evaluator: EvaluatorCNN,
    items: EvaluatedItems,
    attributes: dict[str, torch.Tensor],
    params: EvaluationParams,
) -> dict[str, Any]:
    """The floor or noise row. The floor is "a generator of real items": its conditional and
    attribute accuracy score the real test items against their own captions."""
    feats, preds = evaluator.predict(images, params.batch_size)
    entry: dict[str, Any] = feature_distances(items.feats, feats, params)
    floor = row == "floor"
    entry["conditional_accuracy"] = conditional_accuracy(
        items.preds if floor else preds, items.labels, items.n_classes
    )
    entry["attribute_accuracy"] = attribute_accuracy(
        items.images if floor else images, items.labels, items.asked, attributes
    )
    entry["predicted_class_share"] = class_share(preds, items.n_classes)
    return entry


def score_sample(
    sample: Mapping[str, torch.Tensor],
    evaluator: EvaluatorCNN,
    items: EvaluatedItems,
    attributes: dict[str, torch.Tensor],
    params: EvaluationParams,
) -> dict[str, Any]:
    """Distribution metrics and the class share of one model's samples; for a conditional model
    also how often the evaluator sees the requested class and the requested attributes."""
    images = sample["images"]
    feats, preds = evaluator.predict(images, params.batch_size)
    entry: dict[str, Any] = feature_distances(items.feats, feats, params)
    entry["predicted_class_share"] = class_share(preds, items.n_classes)
    entry["conditional"] = conditional = bool((sample["labels"] >= 0).all())
    if conditional:
        requested = sample["labels"].long()
        entry["conditional_accuracy"] = conditional_accuracy(preds, requested, items.n_classes)
        entry["confusion"] = class_confusion(requested, preds, items.n_classes).tolist()
        entry["attribute_accuracy"] = attribute_accuracy(
            images, requested, {name: sample[name] for name in ATTRIBUTES}, attributes
        )
    return entry


def final_losses(history: pd.DataFrame) -> dict[str, float]:
    """The last logged ``d_loss`` / ``g_loss`` of a training history (as ``final_*``)."""
    last = history.iloc[-1]
    return {f"final_{k}": float(last[k]) for k in ("d_loss", "g_loss") if k in last}


def _judge(
    name: str,
    discriminator: torch.nn.Module,
    sample: Mapping[str, torch.Tensor],
    items: EvaluatedItems,
    references: References,
    captions: pd.DataFrame,
    params: EvaluationParams,
    device: torch.device | str,
    cache: dict[tuple, torch.Tensor],
) -> dict[str, Any]:
    """:func:`score_discriminator` with the loss kind and, for a conditional D, the floor's
    training captions (encoded once per text encoder)."""
    kind = loss_kind(name, discriminator, params.discriminator_loss)
    train_text = None
    if isinstance(discriminator, ConditionalDiscriminator) and sample.get("text") is not None:
        train_text = train_caption_features(
            discriminator.config, captions, references.train_index, cache
        )
    return score_discriminator(
        discriminator, kind, sample, items.images, references.images, train_text,
        params.batch_size, device,
    )  # fmt: skip


def score_models(
    samples: Mapping[str, Mapping[str, torch.Tensor]],
    discriminators: Mapping[str, torch.nn.Module],
    histories: Mapping[str, pd.DataFrame],
    evaluator: EvaluatorCNN,
    model_input: dict[str, torch.Tensor],
    captions: pd.DataFrame,
    attributes: dict[str, torch.Tensor],
    params: EvaluationParams,
    device: torch.device | str,
) -> dict[str, Any]:
    """Every metric that needs the evaluator or a discriminator, for each model and the references.

    Args:
        samples: name → samples of :func:`~fashiongan.evaluation.sampling.sample_models`.
        discriminators: name → discriminator (models without one get no D metrics).
        histories: name → training history (the final d_loss / g_loss are reported).
        evaluator: the trained evaluator CNN (features + classifier).
        model_input: ``train_images``, ``test_images``, ``test_labels``.
        captions: caption table (train captions for the conditional discriminator's floor).
        attributes: tone/fit/pattern cut points.
        params: the evaluation settings (seed, batch size, KID / PRDC sizes, D losses).

    Returns:
        ``{"settings": …, "models": {name: …}, "floor": …, "noise": …}`` (JSON-safe) where each
        entry holds ``fid``, ``kid``, ``kid_std``, ``precision``, ``recall``, ``density``,
        ``coverage`` (evaluator features), ``conditional_accuracy``, ``attribute_accuracy``,
        ``predicted_class_share`` and, per model with a discriminator, ``discriminator``.
    """
    index = next(iter(samples.values()))["index"].long()
    references = reference_images(model_input, len(index), params.seed)
    evaluator = evaluator.eval().to(device)
    items = evaluated_items(evaluator, model_input, index, captions, params.batch_size)
    out: dict[str, Any] = {"settings": evaluator_settings(items, params), "models": {}}
    for row, images in references.images.items():
        out[row] = score_reference(row, images, evaluator, items, attributes, params)
    cache: dict[tuple, torch.Tensor] = {}
    for name, sample in samples.items():
        if not torch.equal(sample["index"].long(), index):
            raise ValueError(f"{name}'s samples cover other test items: rerun sample_models")
        entry = score_sample(sample, evaluator, items, attributes, params)
        if name in discriminators:
            entry["discriminator"] = _judge(
                name, discriminators[name], sample, items, references, captions, params, device,
                cache,
            )  # fmt: skip
        if name in histories:
            entry["training"] = final_losses(histories[name])
        out["models"][name] = entry
    evaluator.cpu()
    return json_safe(out)


def evaluator_settings(items: EvaluatedItems, params: EvaluationParams) -> dict[str, Any]:
    """What the distribution metrics were computed with, and the evaluator's own test accuracy."""
    n = len(items.images)
    return {
        "extractor": EVALUATOR_EXTRACTOR,
        "n_samples": n,
        "reference": "Fashion-MNIST test images",
        "kid_subset_size": min(params.kid_subset_size, n),
        "prdc_k": params.prdc_k,
        "evaluator_test_accuracy": float((items.preds == items.labels).double().mean()),
    }
