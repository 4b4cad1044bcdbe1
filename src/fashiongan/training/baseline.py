"""Training of the seed's MLP baseline GAN: one random batch per iteration, BCE, Adam."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from fashiongan.models.mlp_gan import MLPDiscriminator, MLPGANConfig, MLPGenerator
from fashiongan.plotting import image_grid
from fashiongan.training import distributed
from fashiongan.training.checkpoint import TrainingState, params_fingerprint
from fashiongan.training.loop import fit
from fashiongan.training.runtime import pick_device, seed_everything
from fashiongan.training.tracking import log_figure

#: Parameters that do not change what is trained (more iterations continue a run).
_NOT_SHAPING = {
    "iterations",
    "log_every",
    "sample_every",
    "checkpoint_every",
    "checkpoint_dir",
    "resume",
    "device",
    "mlflow_prefix",
}


def fingerprint(params: dict[str, Any]) -> str:
    """Hash of the parameters that shape the run (not the ones that only affect logging)."""
    return params_fingerprint(params, _NOT_SHAPING)


def train_mlp_gan(
    images: torch.Tensor, params: dict[str, Any]
) -> tuple[MLPGenerator, MLPDiscriminator, list[dict[str, float]]]:
    """Train the MLP GAN on ``images`` (N, 1, 28, 28) in [-1, 1].

    Args:
        images: training images.
        params: ``parameters_train_gan.yml``'s ``baseline`` block.

    Returns:
        The generator and discriminator (CPU, eval mode) and the logged metric history.

    Under torchrun, ``batch_size`` stays the global batch: every rank draws it from the same RNG
    stream, trains on its slice, and DDP averages the gradients (see ``training.distributed``).
    """
    rng = seed_everything(params["seed"])
    device = distributed.setup(pick_device(params.get("device", "auto")))
    config = MLPGANConfig(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in params["model"].items()}
    )
    generator, discriminator = MLPGenerator(config).to(device), MLPDiscriminator(config).to(device)
    opt_g = torch.optim.Adam(
        generator.parameters(), lr=params["g_lr"], betas=tuple(params["g_betas"])
    )
    opt_d = torch.optim.Adam(
        discriminator.parameters(), lr=params["d_lr"], betas=tuple(params["d_betas"])
    )
    state = TrainingState({"G": generator, "D": discriminator}, {"G": opt_g, "D": opt_d}, rng)
    images = images.to(device)
    batch = params["batch_size"]  # global: all ranks together
    local = distributed.check_batch(batch, "baseline.training.batch_size")
    ones, zeros = torch.ones(local, device=device), torch.zeros(local, device=device)
    g, d = distributed.wrap_ddp(generator, device), distributed.wrap_ddp(discriminator, device)
    fixed_noise = torch.randn(
        64, config.noise_dim, generator=torch.Generator().manual_seed(params["seed"] + 1)
    )

    def train_step(step: int) -> dict[str, float]:
        distributed.seed_step(params["seed"], step)  # per-rank dropout masks (no-op in 1 process)
        index = distributed.shard(torch.randint(0, len(images), (batch,), generator=rng))
        real = images[index]  # (b, 1, 28, 28): this rank's slice of the global batch
        fake = g(distributed.shard(torch.randn(batch, config.noise_dim, generator=rng)).to(device))
        # Discriminator: real → 1, fake → 0 (the seed averages the two Keras losses).
        d_real, d_fake = d(real), d(fake.detach())  # (b,) logits
        d_loss = 0.5 * (
            F.binary_cross_entropy_with_logits(d_real, ones)
            + F.binary_cross_entropy_with_logits(d_fake, zeros)
        )
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        # Generator: make the discriminator call the fakes real.
        g_loss = F.binary_cross_entropy_with_logits(d(fake), ones)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        return {
            "d_loss": d_loss.item(),
            "g_loss": g_loss.item(),
            "d_acc_real": (d_real > 0).float().mean().item(),
            "d_acc_fake": (d_fake < 0).float().mean().item(),
        }

    def log_samples(step: int) -> None:
        if not distributed.is_main_process():
            return  # only rank 0 logs
        if params["sample_every"] and step % params["sample_every"] == 0:
            generator.eval()
            with torch.no_grad():
                figure = image_grid(generator(fixed_noise.to(device)), title=f"iteration {step}")
            generator.train()
            log_figure(figure, f"{params.get('mlflow_prefix', '')}samples/iteration_{step:06d}.png")
            figure.clear()

    fit(
        state,
        train_step,
        total_steps=params["iterations"],
        log_every=params["log_every"],
        checkpoint_every=params["checkpoint_every"],
        checkpoint_dir=params.get("checkpoint_dir"),
        fingerprint=fingerprint(params),
        resume=params.get("resume", True),
        after_step=log_samples,
        description="baseline GAN",
        metric_prefix=params.get("mlflow_prefix", ""),
    )
    return generator.cpu().eval(), discriminator.cpu().eval(), state.history
