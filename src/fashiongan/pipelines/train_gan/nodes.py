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

from fashiongan.config import (
    BaselineTraining,
    ConditionalTraining,
    Figures,
    GridFigures,
    TextEncoderParams,
)
from fashiongan.models.conditional_gan import (
    BESIDE_MODEL_TEXT_ENCODER,
    ConditionalDiscriminator,
    ConditionalGenerator,
    ImageEmbedder,
)
from fashiongan.models.mlp_gan import MLPDiscriminator, MLPGenerator
from fashiongan.plotting import image_grid, loss_curves
from fashiongan.text.captions import ATTRIBUTES, stated_attributes
from fashiongan.text.encoder import TextEncoder
from fashiongan.training.baseline import train_mlp_gan
from fashiongan.training.checkpoint import for_variant
from fashiongan.training.conditional import train_conditional_gan
from fashiongan.training.tracking import metric_records

#: What conditional training returns: G, D, the embedder, the text encoder, history, summary.
TrainedConditional = tuple[
    ConditionalGenerator,
    ConditionalDiscriminator,
    ImageEmbedder,
    TextEncoder,
    pd.DataFrame,
    dict[str, float],
]


def train_baseline_gan(
    model_input: dict[str, torch.Tensor], training: BaselineTraining, run_name: str
) -> tuple[MLPGenerator, MLPDiscriminator, pd.DataFrame, dict[str, float]]:
    """Train the reference notebook's MLP GAN on the training split.

    Args:
        model_input: tensors from ``data_processing`` (``train_images`` in [-1, 1]).
        training: the ``baseline.training`` parameters.
        run_name: the variant trained; it resumes only its own checkpoints.

    Returns:
        Generator, discriminator, the metric history (one row per ``log_every`` window) and a
        summary of the final window for DVC metrics.
    """
    started = time.perf_counter()
    generator, discriminator, history = train_mlp_gan(
        model_input["train_images"], for_variant(training, run_name)
    )
    frame = pd.DataFrame(history)
    wall_time = time.perf_counter() - started
    return (
        generator,
        discriminator,
        frame,
        summarise_training(frame, wall_time),
    )


def summarise_training(history: pd.DataFrame, wall_time_s: float) -> dict[str, float]:
    """Final-window metrics, this invocation's wall time and the last step as a flat dict.

    A resumed run's wall time counts only the part after the resume.
    """
    last = history.iloc[-1]
    summary = {f"final_{k}": float(v) for k, v in last.items() if k != "step"}
    summary["wall_time_s"] = round(wall_time_s, 2)
    summary["iterations"] = int(last["step"])
    return summary


def training_mlflow_metrics(summary: dict[str, float], prefix: str) -> dict[str, dict]:
    """The summary as MLflow metrics ``<prefix>final_*`` and ``<prefix>wall_time_s``, at the
    last step, so they sit beside the per-step curves of the same names in the run.

    ``iterations`` is the step itself, not a metric.
    """
    values = {prefix + key: value for key, value in summary.items() if key != "iterations"}
    return metric_records(values, step=int(summary["iterations"]))


def plot_training(
    generator: MLPGenerator, history: pd.DataFrame, figures: Figures
) -> dict[str, Figure]:
    """Sample grid from fixed noise and loss curves (saved to reports/figures and MLflow)."""
    noise = torch.randn(
        figures.n_samples,
        generator.config.noise_dim,
        generator=torch.Generator().manual_seed(figures.seed),
    )
    with torch.no_grad():
        samples = generator.eval()(noise)
    plots = {
        f"{figures.prefix}_samples.png": image_grid(
            samples, ncols=figures.ncols, title=figures.title
        ),
        f"{figures.prefix}_loss_curves.png": loss_curves(history, title=figures.title),
    }
    return plots


def encode_conditioning(
    captions: pd.DataFrame,
    composed: pd.DataFrame,
    sample_captions: tuple[str, ...],
    encoder: TextEncoderParams,
) -> dict[str, torch.Tensor]:
    """Run BERT once per distinct text: captions, modification texts and the sample-grid captions.

    Returns:
        ``text_embeddings`` (U, D) and per training item ``caption_index``, ``reference_index``,
        ``modification_index`` (N,), plus ``sample_text`` (R, D) and ``sample_index`` (R,) for
        the per-epoch grids. When the captions carry the grammar's tone / fit / pattern columns,
        also ``text_attributes`` (U, 3), what each text states (-1: not stated), and the items'
        own ``item_attributes`` (N, 3), for ``aux_weight``. With
        ``trainable_top_layers`` k > 0 or a text ``head``, also ``text_hidden`` (U, T, H) and
        ``text_mask`` (U, T): each text as the frozen layers leave it, so training runs only the
        top k layers and the head (``text_hidden_top_layers`` records k). FashionIQ's training
        items serve as both the captions and the composed queries.
    """
    train = captions[captions["split"] == "train"].drop_duplicates("index").sort_values("index")
    composed = composed.sort_values("index")
    if not (train["index"].to_numpy() == composed["index"].to_numpy()).all():
        raise ValueError("captions and composed queries disagree on the training items")
    texts = train["caption"].tolist() + composed["modification"].tolist() + list(sample_captions)
    text_encoder = TextEncoder.from_params(encoder)
    batch_size = encoder.batch_size
    n = len(train)
    extras: dict[str, torch.Tensor] = {}
    if not text_encoder.trainable:
        unique, embeddings, index = text_encoder.encode_unique(texts, batch_size=batch_size)
    else:  # one BERT pass: the embeddings come from the cached states
        unique, embeddings, index, hidden, mask = text_encoder.encode_unique_with_hidden(
            texts, batch_size=batch_size
        )
        extras = {
            "text_hidden": hidden,
            "text_mask": mask,
            # below how many top layers: a cache for another k must not be reused
            "text_hidden_top_layers": torch.tensor(text_encoder.trainable_top_layers),
        }
    if set(ATTRIBUTES) <= set(train.columns):  # the caption grammar's items (not FashionIQ's)
        extras |= {
            "text_attributes": stated_attributes(unique),
            "item_attributes": torch.as_tensor(
                train[list(ATTRIBUTES)].to_numpy(), dtype=torch.long
            ),
        }
    return {
        **extras,
        "text_embeddings": embeddings,
        "caption_index": index[:n],
        "reference_index": torch.as_tensor(
            composed["reference_index"].to_numpy(), dtype=torch.long
        ),
        "modification_index": index[n : 2 * n],
        "sample_text": embeddings[index[2 * n :]],
        "sample_index": index[2 * n :],
    }


def train_conditional(
    model_input: dict[str, torch.Tensor],
    conditioning: dict[str, torch.Tensor],
    training: ConditionalTraining,
    encoder: TextEncoderParams,
    sample_captions: tuple[str, ...],
    run_name: str,
) -> TrainedConditional:
    """Train the conditional GAN and its retrieval embedder on the training split.

    Also returns the text encoder, its top ``trainable_top_layers`` tuned (or as loaded, when
    0). The catalog saves it beside the generator, whose config names it ``./text_encoder``,
    so inference (CLI, search, evaluation) encodes queries with the very layers and pooling
    the GAN was trained with. A ``data_fingerprint`` in ``model_input`` (FashionIQ's items)
    joins the checkpoint fingerprint, so a checkpoint of other data is not resumed; only a
    checkpoint of the same variant, ``run_name``, is.
    """
    text_encoder = TextEncoder.from_params(encoder, device="cpu")  # tuning moves it
    fingerprint_extra: dict[str, Any] = {
        "text_encoder": {  # what shapes the run besides the training block
            "base": encoder.model_name_or_path or "bundled",
            "trainable_top_layers": text_encoder.trainable_top_layers,
            "max_length": text_encoder.max_length,
            "normalize": True,  # always, now: the key keeps earlier runs' checkpoints resuming
        },
    }
    if text_encoder.head is not None:  # absent otherwise: earlier runs' checkpoints still resume
        fingerprint_extra["text_encoder"] |= {
            "head": encoder.head,
            "head_pools": encoder.head_pools,
        }
    if "data_fingerprint" in model_input:
        size, digest = model_input["data_fingerprint"].tolist()
        fingerprint_extra["data_fingerprint"] = f"{size}-{digest}"
    started = time.perf_counter()
    generator, discriminator, embedder, history = train_conditional_gan(
        model_input["train_images"],
        model_input["train_labels"],
        conditioning,
        for_variant(training, run_name),
        list(sample_captions),
        text_encoder,
        model_extra={
            "text_encoder": BESIDE_MODEL_TEXT_ENCODER,
            "text_pooling": text_encoder.pooling,
        },
        fingerprint_extra=fingerprint_extra,
    )
    frame = pd.DataFrame(history)
    summary = summarise_training(frame, time.perf_counter() - started)
    return generator, discriminator, embedder, text_encoder, frame, summary


def plot_conditional(
    generator: ConditionalGenerator,
    text_encoder: TextEncoder,
    history: pd.DataFrame,
    sample_captions: tuple[str, ...],
    figures: GridFigures,
) -> dict[str, Figure]:
    """One row per sample caption (same noise across rows), encoded by the trained text
    encoder, and the loss curves."""
    cols = figures.ncols
    noise = torch.randn(
        cols, generator.config.noise_dim, generator=torch.Generator().manual_seed(figures.seed)
    )
    text = text_encoder.encode(list(sample_captions))
    with torch.no_grad():
        samples = generator.eval()(noise.repeat(len(text), 1), text.repeat_interleave(cols, 0))
    plots = {
        f"{figures.prefix}_samples.png": image_grid(
            samples, ncols=cols, row_labels=list(sample_captions), title=figures.title
        ),
        f"{figures.prefix}_loss_curves.png": loss_curves(history, title=figures.title),
    }
    return plots
