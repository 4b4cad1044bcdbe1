"""Training of the reference notebook's MLP baseline GAN: one random batch per iteration, BCE, Adam.

A step reads like pytorch/examples' DCGAN: draw a batch and noise, update D on real and fake,
update G to make D call its fakes real.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from fashiongan.compute import thread_hooks, torch_threads
from fashiongan.config import BaselineTraining
from fashiongan.models.mlp_gan import MLPDiscriminator, MLPGANConfig, MLPGenerator
from fashiongan.plotting import image_grid
from fashiongan.training import distributed
from fashiongan.training.checkpoint import TrainingState, params_fingerprint
from fashiongan.training.loop import fit, run_all
from fashiongan.training.runtime import pick_device, seed_everything
from fashiongan.training.tracking import log_figure


def fingerprint(params: BaselineTraining) -> str:
    """Hash of the parameters that shape the run (not its length or logging: run control)."""
    return params_fingerprint(params)


@dataclass
class BaselineStep:
    """One iteration. Under torchrun every rank draws the global batch from the same ``rng``
    stream and trains on its slice (b); DDP averages the gradients."""

    g: nn.Module  # DDP-wrapped under torchrun
    d: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    images: torch.Tensor  # (N, 1, 28, 28) in [-1, 1], on the device
    rng: torch.Generator
    batch_size: int  # global: all ranks together
    noise_dim: int
    seed: int

    def __post_init__(self) -> None:
        local = self.batch_size // distributed.world()  # this rank's share (b)
        self.ones = torch.ones(local, device=self.images.device)  # (b,) BCE targets
        self.zeros = torch.zeros(local, device=self.images.device)

    def __call__(self, step: int) -> dict[str, float]:
        distributed.seed_step(self.seed, step)  # per-rank dropout masks (no-op in 1 process)
        index = torch.randint(0, len(self.images), (self.batch_size,), generator=self.rng)
        real = self.images[distributed.shard(index)]  # (b, 1, 28, 28)
        noise = torch.randn(self.batch_size, self.noise_dim, generator=self.rng)
        fake = self.g(distributed.shard(noise).to(self.images.device))  # (b, 1, 28, 28)
        d_loss, d_real, d_fake = self.d_step(real, fake)
        g_loss = self.g_step(fake)
        return {
            "d_loss": d_loss.item(),
            "g_loss": g_loss.item(),
            "d_acc_real": (d_real > 0).float().mean().item(),
            "d_acc_fake": (d_fake < 0).float().mean().item(),
        }

    def d_step(
        self, real: torch.Tensor, fake: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Real → 1, fake → 0; the mean of the two, as the reference notebook's Keras losses."""
        d_real, d_fake = self.d(real), self.d(fake.detach())  # (b,) logits
        d_loss = 0.5 * (
            F.binary_cross_entropy_with_logits(d_real, self.ones)
            + F.binary_cross_entropy_with_logits(d_fake, self.zeros)
        )
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        return d_loss, d_real, d_fake

    def g_step(self, fake: torch.Tensor) -> torch.Tensor:
        """Make the (just updated) discriminator call the fakes real."""
        g_loss = F.binary_cross_entropy_with_logits(self.d(fake), self.ones)
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        return g_loss


@dataclass
class BaselineRun:
    """A seeded run before its first step."""

    step: BaselineStep
    state: TrainingState
    generator: MLPGenerator
    discriminator: MLPDiscriminator


def _sample_logger(generator: MLPGenerator, params: BaselineTraining) -> Callable[[int], None]:
    """Every ``sample_every`` iterations (rank 0): a grid from the same 64 noise vectors."""
    noise = torch.randn(
        64, generator.config.noise_dim, generator=torch.Generator().manual_seed(params.seed + 1)
    )  # (64, Z)

    def log_samples(step: int) -> None:
        if not distributed.is_main_process() or not params.sample_every:
            return
        if step % params.sample_every == 0:
            device = next(generator.parameters()).device
            generator.eval()
            with torch.no_grad():
                figure = image_grid(generator(noise.to(device)), title=f"iteration {step}")
            generator.train()
            log_figure(figure, f"{params.mlflow_prefix}samples/iteration_{step:06d}.png")

    return log_samples


def prepare_baseline(images: torch.Tensor, params: BaselineTraining) -> BaselineRun:
    """Seed, build G and D and their optimizers, and wire one step (benchmarks time it alone)."""
    rng = seed_everything(params.seed)
    device = distributed.setup(pick_device(params.device))
    config = MLPGANConfig(**params.model.model_dump())
    generator, discriminator = MLPGenerator(config).to(device), MLPDiscriminator(config).to(device)
    opt_g = torch.optim.Adam(generator.parameters(), lr=params.g_lr, betas=params.g_betas)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=params.d_lr, betas=params.d_betas)
    state = TrainingState({"G": generator, "D": discriminator}, {"G": opt_g, "D": opt_d}, rng)
    distributed.check_batch(params.batch_size, "baseline.training.batch_size")  # before DDP
    step = BaselineStep(
        distributed.wrap_ddp(generator, device), distributed.wrap_ddp(discriminator, device),
        opt_g, opt_d, images.to(device), rng, params.batch_size, config.noise_dim, params.seed,
    )  # fmt: skip
    return BaselineRun(step, state, generator, discriminator)


def train_mlp_gan(
    images: torch.Tensor, params: BaselineTraining
) -> tuple[MLPGenerator, MLPDiscriminator, list[dict[str, float]]]:
    """Train the MLP GAN on ``images`` (N, 1, 28, 28) in [-1, 1], on ``num_threads`` threads.

    Args:
        images: training images.
        params: the ``baseline.training`` block.

    Returns:
        The generator and discriminator (CPU, eval mode) and the logged metric history.
    """
    follow_free_cores = thread_hooks(params.num_threads)  # capped by the threads torch has now
    with torch_threads(params.num_threads):
        run = prepare_baseline(images, params)
        samples = _sample_logger(run.generator, params)
        fit(
            run.state,
            run.step,
            total_steps=params.iterations,
            log_every=params.log_every,
            checkpoint_every=params.checkpoint_every,
            checkpoint_dir=params.checkpoint_dir,
            fingerprint=fingerprint(params),
            resume=params.resume,
            after_step=run_all([*follow_free_cores, samples]),
            description="baseline GAN",
            metric_prefix=params.mlflow_prefix,
        )
    return run.generator.cpu().eval(), run.discriminator.cpu().eval(), run.state.history
