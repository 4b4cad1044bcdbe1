"""Nodes of the autoencoders pipeline: train a vanilla AE, a denoising AE and a β-VAE, then
score them on the test set, plot and write ``reports/autoencoders.md``.

Parameters come from ``conf/base/parameters_autoencoders.yml``; metrics are on intensities in
[0, 1] (see :mod:`fashiongan.pipelines.autoencoders.metrics`).
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn.decomposition import PCA

from fashiongan.models.autoencoders import (
    AutoencoderConfig,
    ConvAutoencoder,
    ConvVAE,
    VAEConfig,
    VAEDecoder,
    corrupt,
)
from fashiongan.pipelines.autoencoders.metrics import PSNR_CAP_DB, reconstruction_metrics
from fashiongan.plotting import image_grid
from fashiongan.training.epochs import batched, fit_epochs
from fashiongan.training.runtime import pick_device, seed_everything
from fashiongan.training.tracking import log_metrics


def _config(cls: type, model: dict[str, Any]) -> Any:
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in model.items()})


def _check_noise(noise: dict[str, float]) -> dict[str, float]:
    if not noise:
        raise ValueError("denoising.noise must name at least one kind, e.g. {gaussian: 0.3}")
    return noise


def train_autoencoder(
    model_input: dict[str, torch.Tensor], params: dict[str, Any], noise: dict[str, float] | None
) -> tuple[ConvAutoencoder, pd.DataFrame]:
    """Train a conv autoencoder with MSE; with ``noise`` it learns to denoise.

    Args:
        model_input: ``train_images`` and ``validation_images`` in [-1, 1].
        params: ``autoencoders.vanilla`` or ``autoencoders.denoising``.
        noise: None for the vanilla AE; else ``{kind: level}`` — each training image is
            corrupted by one kind drawn uniformly (:func:`corrupt`), the target is the clean image.

    Returns:
        The model (CPU, eval mode) and its per-epoch history.
    """
    rng = seed_everything(params["seed"])
    device = pick_device(params.get("device", "auto"))
    model = ConvAutoencoder(_config(AutoencoderConfig, params["model"])).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=params["lr"])
    train, val = model_input["train_images"].to(device), model_input["validation_images"]
    kinds = list(_check_noise(noise)) if noise is not None else []
    val_noisy = _corrupt_mixed(val, noise, torch.Generator().manual_seed(params["seed"]))
    val, val_noisy = val.to(device), val_noisy.to(device)

    def batch_step(indices: torch.Tensor) -> dict[str, float]:
        clean = train[indices.to(device)]  # (B, 1, 28, 28)
        inputs = _corrupt_mixed(clean, noise, rng) if kinds else clean
        loss = F.mse_loss(model(inputs), clean)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"loss": loss.item()}

    def validate() -> dict[str, float]:
        return {"loss": F.mse_loss(batched(model, val_noisy), val.cpu()).item()}

    name = "denoising" if kinds else "vanilla"
    history = fit_epochs(
        {"model": model},
        {"model": optimizer},
        rng,
        n_train=len(train),
        batch_step=batch_step,
        validate=validate,
        params=params,
        name=name,
    )
    return model.cpu().eval(), pd.DataFrame(history)


def train_vanilla_autoencoder(
    model_input: dict[str, torch.Tensor], params: dict[str, Any]
) -> tuple[ConvAutoencoder, pd.DataFrame]:
    """The vanilla conv AE (see :func:`train_autoencoder`)."""
    return train_autoencoder(model_input, params, noise=None)


def train_denoising_autoencoder(
    model_input: dict[str, torch.Tensor], params: dict[str, Any]
) -> tuple[ConvAutoencoder, pd.DataFrame]:
    """The same architecture trained to map corrupted images to clean ones."""
    return train_autoencoder(model_input, params, noise=params["noise"])


def _corrupt_mixed(
    images: torch.Tensor, noise: dict[str, float] | None, generator: torch.Generator
) -> torch.Tensor:
    """Corrupt each image with one noise kind drawn uniformly from ``noise`` (None: unchanged)."""
    if not noise:
        return images
    kinds = list(noise)
    choice = torch.randint(0, len(kinds), (len(images),), generator=generator)
    out = images.clone()
    for index, kind in enumerate(kinds):
        picked = (choice == index).to(images.device)
        if picked.any():
            out[picked] = corrupt(images[picked], kind, noise[kind], generator)
    return out


def train_vae(
    model_input: dict[str, torch.Tensor], params: dict[str, Any]
) -> tuple[ConvVAE, VAEDecoder, pd.DataFrame]:
    """Train the conv β-VAE by minimising reconstruction NLL + β·KL (the negative β-ELBO).

    Args:
        model_input: ``train_images`` and ``validation_images`` in [-1, 1].
        params: ``autoencoders.vae`` (``beta``, ``model.latent_dim``, ...).

    Returns:
        The full VAE, its decoder alone (the generator the evaluation pipeline samples) and the
        per-epoch history (loss, reconstruction, kl, elbo).
    """
    rng = seed_everything(params["seed"])
    device = pick_device(params.get("device", "auto"))
    beta = float(params["beta"])
    if beta < 0:
        raise ValueError(f"vae.beta must be >= 0, got {beta}")
    vae = ConvVAE(_config(VAEConfig, params["model"])).to(device)
    optimizer = torch.optim.Adam(vae.parameters(), lr=params["lr"])
    train, val = model_input["train_images"].to(device), model_input["validation_images"]
    val_rng = torch.Generator().manual_seed(params["seed"])

    def batch_step(indices: torch.Tensor) -> dict[str, float]:
        terms = vae.elbo_terms(train[indices.to(device)], beta, rng)
        optimizer.zero_grad(set_to_none=True)
        terms.loss.backward()
        optimizer.step()
        return {
            "loss": terms.loss.item(),
            "reconstruction": terms.reconstruction.item(),
            "kl": terms.kl.item(),
        }

    def validate() -> dict[str, float]:
        return _elbo_summary(vae, val, beta, val_rng.manual_seed(params["seed"]), device)

    history = fit_epochs(
        {"vae": vae},
        {"vae": optimizer},
        rng,
        n_train=len(train),
        batch_step=batch_step,
        validate=validate,
        params=params,
        name="vae",
    )
    vae = vae.cpu().eval()
    return vae, vae.decoder, pd.DataFrame(history)


@torch.no_grad()
def _elbo_summary(
    vae: ConvVAE,
    images: torch.Tensor,
    beta: float,
    generator: torch.Generator,
    device: torch.device | str = "cpu",
    batch_size: int = 500,
) -> dict[str, float]:
    """Means over ``images`` of the β-loss and the ELBO terms, in nats per image."""
    totals = {"loss": 0.0, "reconstruction": 0.0, "kl": 0.0}
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size].to(device)
        terms = vae.elbo_terms(chunk, beta, generator)
        for key in totals:
            totals[key] += getattr(terms, key).item() * len(chunk)
    summary = {key: value / len(images) for key, value in totals.items()}
    summary["elbo"] = -(summary["reconstruction"] + summary["kl"])
    return summary


def evaluate_autoencoders(
    model_input: dict[str, torch.Tensor],
    vanilla: ConvAutoencoder,
    denoising: ConvAutoencoder,
    vae: ConvVAE,
    noise: dict[str, float],
    beta: float,
    params: dict[str, Any],
) -> dict[str, Any]:
    """Score the three models on the test set (also logged to MLflow as ``test/...``).

    Returns:
        ``reconstruction``: MSE, PSNR (dB, capped at ``psnr_cap_db``) and SSIM of each model on
        clean test images (the VAE decodes its posterior mean); ``denoising``: per noise kind, the
        PSNR/SSIM of the noisy input, of the denoising AE's output and of the vanilla AE's output,
        and the denoiser's PSNR gain over the noisy input; ``vae``: the test ELBO terms (one-sample
        estimate, nats per image).
    """
    images = model_input["test_images"]
    cap = float(params.get("psnr_cap_db", PSNR_CAP_DB))
    size = params["batch_size"]
    generator = torch.Generator().manual_seed(params["seed"])
    metrics: dict[str, Any] = {"psnr_cap_db": cap, "n_test": len(images)}
    metrics["reconstruction"] = {
        name: reconstruction_metrics(batched(model.eval(), images, batch_size=size), images, cap)
        for name, model in (("vanilla", vanilla), ("denoising", denoising), ("vae", vae))
    }
    metrics["denoising"] = {}
    for kind, level in _check_noise(noise).items():
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
    metrics["vae"] = {"beta": beta, **_elbo_summary(vae.eval(), images, beta, generator)}
    log_metrics(_flatten(metrics, "test"), step=0)
    return metrics


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
    noise: dict[str, float],
    class_names: list[str],
    params: dict[str, Any],
) -> tuple[dict[str, Figure], dict[str, Figure]]:
    """Reconstructions, noisy vs denoised, VAE samples, 2-D latent projections, loss curves.

    Returns the same figures twice (data/08_reporting via MLflow, and reports/figures).
    """
    images, labels = model_input["test_images"], model_input["test_labels"]
    generator = torch.Generator().manual_seed(params["seed"])
    # One test image of each class per column (as far as the split has them).
    columns = [int(i) for c in range(len(class_names)) for i in (labels == c).nonzero()[:1, 0]]
    originals = images[columns]
    ncols = len(columns)
    with torch.no_grad():
        rows = [originals, vanilla(originals), denoising(originals), vae(originals)]
        noisy_rows = [originals]
        for kind, level in noise.items():
            noisy = corrupt(originals, kind, level, generator)
            noisy_rows += [noisy, denoising(noisy)]
    noise_labels = ["clean"] + [
        label for kind, level in noise.items() for label in (f"{kind} {level}", "denoised")
    ]
    samples = vae.decoder.sample(params["n_samples"], generator)
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
            samples, ncols=params["ncols"], title="VAE samples, z ~ N(0, I)"
        ),
        f"{prefix}_latent_space.png": plot_latent_space(
            vanilla, vae, images, labels, class_names, params
        ),
        f"{prefix}_training_curves.png": plot_training_curves(histories),
    }
    return plots, plots


def plot_latent_space(
    vanilla: ConvAutoencoder,
    vae: ConvVAE,
    images: torch.Tensor,
    labels: torch.Tensor,
    class_names: list[str],
    params: dict[str, Any],
) -> Figure:
    """PCA to 2-D of the AE codes and the VAE posterior means, points coloured by class."""
    keep = torch.randperm(len(images), generator=torch.Generator().manual_seed(params["seed"]))
    keep = keep[: params["projection_points"]]
    images, labels = images[keep], labels[keep].numpy()
    codes = {
        "vanilla AE code": batched(vanilla.encode, images),
        "VAE posterior mean μ": batched(lambda x: vae.encode(x)[0], images),
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


def collect_histories(
    vanilla: pd.DataFrame, denoising: pd.DataFrame, vae: pd.DataFrame
) -> dict[str, pd.DataFrame]:
    """The three training histories by model name."""
    return {"vanilla AE": vanilla, "denoising AE": denoising, "VAE": vae}


def write_autoencoders_report(
    metrics: dict[str, Any], histories: dict[str, pd.DataFrame], figures_dir: str
) -> str:
    """``reports/autoencoders.md``: the test metrics as tables, training times and figures."""
    rec = metrics["reconstruction"]
    lines = [
        "# Autoencoders: vanilla, denoising, β-VAE",
        "",
        "Generated by `kedro run --pipelines=autoencoders`; metrics on the "
        f"{metrics['n_test']} test images, intensities in [0, 1]. PSNR is capped at "
        f"{metrics['psnr_cap_db']:g} dB per image (identical images would be +inf).",
        "",
        "## Reconstruction of clean test images",
        "",
        "| Model | MSE | PSNR (dB) | SSIM |",
        "|---|---:|---:|---:|",
    ]
    names = {"vanilla": "Vanilla conv AE", "denoising": "Denoising conv AE", "vae": "VAE (mean z)"}
    for key, label in names.items():
        m = rec[key]
        lines.append(f"| {label} | {m['mse']:.5f} | {m['psnr_db']:.2f} | {m['ssim']:.4f} |")
    lines += [
        "",
        "## Denoising",
        "",
        "PSNR (dB) against the clean image. *Gain* is the denoising AE's PSNR minus the noisy "
        "input's; the vanilla AE (never trained on noise) is shown for reference.",
        "",
        "| Noise | Level | Noisy input | Denoising AE | Gain | Vanilla AE | SSIM noisy → denoised |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for kind, d in metrics["denoising"].items():
        lines.append(
            f"| {kind} | {d['level']:g} | {d['noisy_psnr_db']:.2f} | {d['denoised_psnr_db']:.2f} "
            f"| {d['psnr_gain_db']:+.2f} | {d['vanilla_ae_psnr_db']:.2f} "
            f"| {d['noisy_ssim']:.3f} → {d['denoised_ssim']:.3f} |"
        )
    v = metrics["vae"]
    lines += [
        "",
        f"## VAE evidence lower bound (β = {v['beta']:g})",
        "",
        "One-sample estimate per test image, in nats (Bernoulli likelihood on intensities in "
        "[0, 1], so the reconstruction term of a perfect model is the images' entropy, not 0).",
        "",
        "| ELBO | Reconstruction NLL | KL(q(z\\|x) ‖ p(z)) | β-weighted loss |",
        "|---:|---:|---:|---:|",
        f"| {v['elbo']:.2f} | {v['reconstruction']:.2f} | {v['kl']:.2f} | {v['loss']:.2f} |",
        "",
        "## Training",
        "",
        "Losses: MSE on [-1, 1] images (the denoising AE's validation inputs are corrupted), the "
        "VAE's is the negative β-ELBO in nats. Wall time: seconds from the start of training to "
        "the end of the last epoch, as recorded when it was trained (after a resume, from the "
        "resume).",
        "",
        "| Model | Epochs | Final train loss | Final val loss | Wall time (s) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, history in histories.items():
        last = history.iloc[-1]
        lines.append(
            f"| {name} | {int(last['epoch'])} | {last['train_loss']:.4f} | "
            f"{last.get('val_loss', float('nan')):.4f} | {last['elapsed_s']:.0f} |"
        )
    lines += ["", "## Figures", ""]
    for stem, caption in (
        ("reconstructions", "Originals and reconstructions"),
        ("denoising", "Noisy vs denoised"),
        ("vae_samples", "VAE samples"),
        ("latent_space", "Latent space (PCA), coloured by class"),
        ("training_curves", "Training curves"),
    ):
        lines.append(f"![{caption}]({figures_dir}/autoencoders_{stem}.png)")
    return "\n".join(lines) + "\n"
