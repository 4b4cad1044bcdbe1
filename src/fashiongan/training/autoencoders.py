"""Train the autoencoders (vanilla, denoising, β-VAE) on the shared epoch loop.

``fit_epochs`` brings resume, checkpoints, the NaN guard and MLflow metrics; this module says
what one batch step and one validation pass are for each model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fashiongan.compute import batched
from fashiongan.config import AutoencoderTraining, Corruption, DenoisingTraining, VAETraining
from fashiongan.models.autoencoders import (
    AutoencoderConfig,
    ConvAutoencoder,
    ConvVAE,
    VAEConfig,
    corrupt,
)
from fashiongan.training.epochs import fit_epochs
from fashiongan.training.runtime import pick_device, seed_everything


def noise_levels(noise: Corruption | None) -> dict[str, float]:
    """``{kind: level}`` in the YAML's order (the order kinds are drawn in); None → empty."""
    return {} if noise is None else noise.model_dump()


def corrupt_mixed(
    images: torch.Tensor, noise: dict[str, float], generator: torch.Generator
) -> torch.Tensor:
    """Corrupt each image with one noise kind drawn uniformly from ``noise`` (empty: unchanged)."""
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


def train_autoencoder(
    model_input: dict[str, torch.Tensor], params: AutoencoderTraining | DenoisingTraining
) -> tuple[ConvAutoencoder, list[dict[str, float]]]:
    """Train a conv autoencoder with MSE; a ``DenoisingTraining`` block makes it a denoiser.

    With ``params.noise`` each training image is corrupted by one kind drawn uniformly
    (:func:`corrupt_mixed`) and the target is the clean image; the validation inputs are
    corrupted once, from the seed, so every epoch is scored on the same noisy images.

    Returns:
        The model (CPU, eval mode) and its per-epoch history.
    """
    rng = seed_everything(params.seed)
    device = pick_device(params.device)
    model = ConvAutoencoder(AutoencoderConfig(**params.model.model_dump())).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=params.lr)
    noise = noise_levels(getattr(params, "noise", None))
    train, val = model_input["train_images"].to(device), model_input["validation_images"]
    val_noisy = corrupt_mixed(val, noise, torch.Generator().manual_seed(params.seed))
    val, val_noisy = val.to(device), val_noisy.to(device)

    def batch_step(indices: torch.Tensor) -> dict[str, float]:
        clean = train[indices.to(device)]  # (B, 1, 28, 28)
        inputs = corrupt_mixed(clean, noise, rng)
        loss = F.mse_loss(model(inputs), clean)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"loss": loss.item()}

    def validate() -> dict[str, float]:
        return {"loss": F.mse_loss(batched(model, val_noisy, batch_size=500), val.cpu()).item()}

    history = fit_epochs(
        {"model": model},
        {"model": optimizer},
        rng,
        n_train=len(train),
        batch_step=batch_step,
        validate=validate,
        params=params,
        name="denoising" if noise else "vanilla",
    )
    return model.cpu().eval(), history


def train_beta_vae(
    model_input: dict[str, torch.Tensor], params: VAETraining
) -> tuple[ConvVAE, list[dict[str, float]]]:
    """Train the conv β-VAE by minimising reconstruction NLL + β·KL (the negative β-ELBO).

    Returns:
        The VAE (CPU, eval mode) and its per-epoch history (loss, reconstruction, kl; the
        validation rows add the ELBO).
    """
    rng = seed_everything(params.seed)
    device = pick_device(params.device)
    vae = ConvVAE(VAEConfig(**params.model.model_dump())).to(device)
    optimizer = torch.optim.Adam(vae.parameters(), lr=params.lr)
    train, val = model_input["train_images"].to(device), model_input["validation_images"]
    val_rng = torch.Generator()

    def batch_step(indices: torch.Tensor) -> dict[str, float]:
        terms = vae.elbo_terms(train[indices.to(device)], params.beta, rng)
        optimizer.zero_grad(set_to_none=True)
        terms.loss.backward()
        optimizer.step()
        return {
            "loss": terms.loss.item(),
            "reconstruction": terms.reconstruction.item(),
            "kl": terms.kl.item(),
        }

    def validate() -> dict[str, float]:  # the same ε every epoch: comparable numbers
        return elbo_summary(vae, val, params.beta, val_rng.manual_seed(params.seed), device)

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
    return vae.cpu().eval(), history


@torch.no_grad()
def elbo_summary(
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
