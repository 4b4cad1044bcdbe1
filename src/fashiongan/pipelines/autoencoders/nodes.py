"""Nodes of the autoencoders pipeline: train a vanilla AE, a denoising AE and a β-VAE, then
score them on the test set, plot and write ``reports/autoencoders.md``.

Parameters come from ``conf/base/parameters_autoencoders.yml``; metrics are on intensities in
[0, 1] (see :mod:`fashiongan.pipelines.autoencoders.metrics`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn.decomposition import PCA

from fashiongan.compute import batched
from fashiongan.config import (
    AutoencoderEvaluation,
    AutoencoderFigures,
    AutoencoderTraining,
    DenoisingTraining,
    VAETraining,
)
from fashiongan.models.autoencoders import ConvAutoencoder, ConvVAE, VAEDecoder, corrupt
from fashiongan.pipelines.autoencoders.metrics import reconstruction_metrics
from fashiongan.plotting import image_grid
from fashiongan.reporting import render
from fashiongan.training.autoencoders import (
    elbo_summary,
    noise_levels,
    train_autoencoder,
    train_beta_vae,
)
from fashiongan.training.checkpoint import for_variant
from fashiongan.training.tracking import metric_records


def train_vanilla_autoencoder(
    model_input: dict[str, torch.Tensor], params: AutoencoderTraining, run_name: str
) -> tuple[ConvAutoencoder, pd.DataFrame]:
    """A conv autoencoder trained to reproduce clean images (MSE): the reconstruction baseline."""
    model, history = train_autoencoder(model_input, for_variant(params, run_name))
    return model, pd.DataFrame(history)


def train_denoising_autoencoder(
    model_input: dict[str, torch.Tensor], params: DenoisingTraining, run_name: str
) -> tuple[ConvAutoencoder, pd.DataFrame]:
    """The same architecture trained to map corrupted images (``params.noise``) to clean ones."""
    model, history = train_autoencoder(model_input, for_variant(params, run_name))
    return model, pd.DataFrame(history)


def train_vae(
    model_input: dict[str, torch.Tensor], params: VAETraining, run_name: str
) -> tuple[ConvVAE, VAEDecoder, pd.DataFrame]:
    """The conv β-VAE (negative β-ELBO).

    Returns:
        The full VAE, its decoder alone (the generator the evaluation pipeline samples like a
        GAN's) and the per-epoch history (loss, reconstruction, kl; validation adds the ELBO).
    """
    vae, history = train_beta_vae(model_input, for_variant(params, run_name))
    return vae, vae.decoder, pd.DataFrame(history)


def evaluate_autoencoders(
    model_input: dict[str, torch.Tensor],
    vanilla: ConvAutoencoder,
    denoising: ConvAutoencoder,
    vae: ConvVAE,
    denoising_params: DenoisingTraining,
    beta: float,
    params: AutoencoderEvaluation,
) -> dict[str, Any]:
    """Score the three models on the test set.

    Args:
        model_input: ``test_images`` in [-1, 1].
        vanilla, denoising, vae: the trained models.
        denoising_params: ``autoencoders.denoising``: the test images are corrupted with its
            ``noise`` levels, the ones the denoiser was trained on.
        beta: the VAE's KL weight (its test loss is the β-ELBO it was trained on).
        params: ``autoencoders.evaluation`` (seed of the noise and the VAE's ε, batch size,
            PSNR cap).

    Returns:
        ``reconstruction``: MSE, PSNR (dB, capped at ``psnr_cap_db``) and SSIM of each model on
        clean test images (the VAE decodes its posterior mean); ``denoising``: per noise kind, the
        PSNR/SSIM of the noisy input, of the denoising AE's output and of the vanilla AE's output,
        and the denoiser's PSNR gain over the noisy input; ``vae``: the test ELBO terms (one-sample
        estimate, nats per image).
    """
    images = model_input["test_images"]
    cap, size = params.psnr_cap_db, params.batch_size
    generator = torch.Generator().manual_seed(params.seed)
    metrics: dict[str, Any] = {"psnr_cap_db": cap, "n_test": len(images)}
    metrics["reconstruction"] = {
        name: reconstruction_metrics(batched(model.eval(), images, batch_size=size), images, cap)
        for name, model in (("vanilla", vanilla), ("denoising", denoising), ("vae", vae))
    }
    metrics["denoising"] = {}
    for kind, level in noise_levels(denoising_params.noise).items():
        noisy = corrupt(images, kind, level, generator)
        noisy_scores = reconstruction_metrics(noisy, images, cap)
        denoised = reconstruction_metrics(batched(denoising, noisy, batch_size=size), images, cap)
        plain = reconstruction_metrics(batched(vanilla, noisy, batch_size=size), images, cap)
        metrics["denoising"][kind] = {
            "level": level,
            "noisy_psnr_db": noisy_scores["psnr_db"],
            "noisy_ssim": noisy_scores["ssim"],
            "denoised_psnr_db": denoised["psnr_db"],
            "denoised_ssim": denoised["ssim"],
            "psnr_gain_db": denoised["psnr_db"] - noisy_scores["psnr_db"],
            "vanilla_ae_psnr_db": plain["psnr_db"],
        }
    metrics["vae"] = {"beta": beta, **elbo_summary(vae.eval(), images, beta, generator)}
    return metrics


def autoencoders_mlflow_metrics(metrics: dict[str, Any]) -> dict[str, dict]:
    """Every number of the test metrics as ``test/<path>`` (``test/denoising/masking/
    psnr_gain_db``, ``test/vae/elbo``, …) at step 0, for the run's metric columns."""
    return metric_records(_flatten(metrics, "test"), step=0)


def _flatten(tree: dict[str, Any], prefix: str) -> dict[str, float]:
    flat: dict[str, float] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}/{key}"))
        else:
            flat[f"{prefix}/{key}"] = float(value)
    return flat


def plot_autoencoders(
    model_input: dict[str, torch.Tensor],
    vanilla: ConvAutoencoder,
    denoising: ConvAutoencoder,
    vae: ConvVAE,
    histories: dict[str, pd.DataFrame],
    denoising_params: DenoisingTraining,
    class_names: Sequence[str],
    params: AutoencoderFigures,
) -> dict[str, Figure]:
    """Reconstructions, noisy vs denoised, VAE samples, 2-D latent projections, loss curves.

    Saved to reports/figures/autoencoders and logged to MLflow.
    """
    images, labels = model_input["test_images"], model_input["test_labels"]
    levels = noise_levels(denoising_params.noise)
    generator = torch.Generator().manual_seed(params.seed)
    # One test image of each class per column (as far as the split has them).
    columns = [int(i) for c in range(len(class_names)) for i in (labels == c).nonzero()[:1, 0]]
    originals = images[columns]
    ncols = len(columns)
    with torch.no_grad():
        rows = [originals, vanilla(originals), denoising(originals), vae(originals)]
        noisy_rows = [originals]
        for kind, level in levels.items():
            noisy = corrupt(originals, kind, level, generator)
            noisy_rows += [noisy, denoising(noisy)]
    noise_labels = ["clean"] + [
        label for kind, level in levels.items() for label in (f"{kind} {level}", "denoised")
    ]
    samples = vae.decoder.sample(params.n_samples, generator)
    prefix = "autoencoders"
    plots = {
        f"{prefix}_reconstructions.png": image_grid(
            torch.cat(rows),
            ncols=ncols,
            row_labels=["original", "vanilla AE", "denoising AE", "VAE (mean z)"],
            title="Test images and their reconstructions",
        ),
        f"{prefix}_denoising.png": image_grid(
            torch.cat(noisy_rows),
            ncols=ncols,
            row_labels=noise_labels,
            title="Noisy inputs and the denoising AE's outputs",
        ),
        f"{prefix}_vae_samples.png": image_grid(
            samples, ncols=params.ncols, title="VAE samples, z ~ N(0, I)"
        ),
        f"{prefix}_latent_space.png": plot_latent_space(
            vanilla, vae, images, labels, class_names, params
        ),
        f"{prefix}_training_curves.png": plot_training_curves(histories),
    }
    return plots


def plot_latent_space(
    vanilla: ConvAutoencoder,
    vae: ConvVAE,
    images: torch.Tensor,
    labels: torch.Tensor,
    class_names: Sequence[str],
    params: AutoencoderFigures,
) -> Figure:
    """PCA to 2-D of the AE codes and the VAE posterior means, points coloured by class."""
    keep = torch.randperm(len(images), generator=torch.Generator().manual_seed(params.seed))
    keep = keep[: params.projection_points]
    images, labels = images[keep], labels[keep].numpy()
    codes = {
        "vanilla AE code": batched(vanilla.encode, images, batch_size=500),
        "VAE posterior mean μ": batched(lambda x: vae.encode(x)[0], images, batch_size=500),
    }
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.2))
    cmap = plt.get_cmap("tab10")
    for ax, (title, z) in zip(axes, codes.items(), strict=True):
        points = z.numpy() if z.shape[1] <= 2 else PCA(2, random_state=0).fit_transform(z.numpy())
        if points.shape[1] == 1:  # a 1-D latent: spread on the y axis by class
            points = torch.cat([torch.from_numpy(points), torch.tensor(labels)[:, None]], 1).numpy()
        for c, class_name in enumerate(class_names):
            mask = labels == c
            ax.scatter(*points[mask].T, s=4, alpha=0.6, color=cmap(c % 10), label=class_name)
        ax.set(title=f"{title} (dim {z.shape[1]}, PCA to 2-D)", xticks=[], yticks=[])
    axes[1].legend(markerscale=4, fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    return fig


def plot_training_curves(histories: dict[str, pd.DataFrame]) -> Figure:
    """Train and validation loss per epoch, one panel per model."""
    fig, axes = plt.subplots(1, len(histories), figsize=(4.2 * len(histories), 3.5), squeeze=False)
    for ax, (name, history) in zip(axes[0], histories.items(), strict=True):
        for column in ("train_loss", "val_loss"):
            if column in history:
                ax.plot(history["epoch"], history[column], marker="o", label=column)
        ax.set(title=name, xlabel="epoch", ylabel="loss")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend()
    fig.tight_layout()
    return fig


def write_autoencoders_report(
    metrics: dict[str, Any], histories: dict[str, pd.DataFrame], figures_dir: str
) -> str:
    """``reports/autoencoders.md``: the test metrics as tables, training times and figures."""
    training = []
    for name, history in histories.items():
        last = history.iloc[-1]
        training.append(
            {
                "name": name,
                "epoch": int(last["epoch"]),
                "train_loss": last["train_loss"],
                "val_loss": last.get("val_loss", float("nan")),
                "elapsed_s": last["elapsed_s"],
            }
        )
    return render(
        "autoencoders.md.j2",
        n_test=metrics["n_test"],
        psnr_cap_db=metrics["psnr_cap_db"],
        reconstruction=metrics["reconstruction"],
        denoising=metrics["denoising"],
        vae=metrics["vae"],
        model_labels={
            "vanilla": "Vanilla conv AE",
            "denoising": "Denoising conv AE",
            "vae": "VAE (mean z)",
        },
        training=training,
        figures_dir=figures_dir,
    )
