"""Adversarial losses (BCE with one-sided label smoothing, WGAN-GP, hinge) and the triplet term.

Every discriminator loss sees three scores: real images with their own captions (``real``), generated
images with the captions they were asked for (``fake``), and real images with someone else's caption
(``mismatch``, matching-aware: Reed et al. 2016). The last two are both "fake" and share its weight.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

LOSSES = ("bce", "wgan-gp", "hinge")


def discriminator_loss(
    kind: str,
    real: torch.Tensor,
    fake: torch.Tensor,
    mismatch: torch.Tensor,
    real_label: float,
) -> torch.Tensor:
    """The critic's loss for one batch of scores (B,) each."""
    if kind == "bce":  # one-sided smoothing: real targets real_label, fakes stay 0 (Salimans 2016)
        bce = F.binary_cross_entropy_with_logits
        fakes = 0.5 * (
            bce(fake, torch.zeros_like(fake)) + bce(mismatch, torch.zeros_like(mismatch))
        )
        return bce(real, torch.full_like(real, real_label)) + fakes
    if kind == "hinge":
        return F.relu(1 - real).mean() + 0.5 * (
            F.relu(1 + fake).mean() + F.relu(1 + mismatch).mean()
        )
    if kind == "wgan-gp":  # gradient penalty is added by the caller
        return -real.mean() + 0.5 * (fake.mean() + mismatch.mean())
    raise ValueError(f"unknown loss {kind!r}; choose one of {LOSSES}")


def generator_loss(kind: str, fake: torch.Tensor) -> torch.Tensor:
    """The generator's adversarial loss on its fakes' scores (B,)."""
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
    if kind in ("hinge", "wgan-gp"):
        return -fake.mean()
    raise ValueError(f"unknown loss {kind!r}; choose one of {LOSSES}")


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    alpha: torch.Tensor,
) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017): E[(‖∇ critic(x̂)‖₂ − 1)²] at x̂ = α·real + (1−α)·fake.

    Args:
        critic: images (B, ...) → scores (B,), with the condition already bound.
        alpha: (B,) mixing weights in [0, 1].
    """
    shape = (-1,) + (1,) * (real.dim() - 1)
    mixed = (alpha.view(shape) * real + (1 - alpha.view(shape)) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


def triplet_loss(
    anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, margin: float
) -> torch.Tensor:
    """mean of max(0, ‖a−p‖ − ‖a−n‖ + margin) over the batch, on embeddings (B, D).

    Plain (not squared) L2 distances, as ``F.triplet_margin_loss`` with ``p=2`` computes them.
    """
    return F.triplet_margin_loss(anchor, positive, negative, margin=margin, p=2)


def auxiliary_loss(logits: list[torch.Tensor], targets: torch.Tensor) -> torch.Tensor:
    """AC-GAN term (Odena et al. 2017): summed cross-entropy over the properties D names.

    Args:
        logits: one (B, K_i) tensor per property (class, tone, fit, pattern).
        targets: (B, len(logits)) values; -1 where a value is not asked for (no loss there).
    """
    total = logits[0].new_zeros(())
    for i, head in enumerate(logits):
        asked = targets[:, i] >= 0
        if asked.any():  # cross_entropy over no rows would be NaN
            total = total + F.cross_entropy(head.float()[asked], targets[asked, i])
    return total


def gaussian_kl(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(log_var)) ‖ N(0, I)), averaged over every element of (B, K), as StackGAN
    weighs its conditioning augmentation's term."""
    return 0.5 * (mean.float().square() + log_var.float().exp() - 1 - log_var.float()).mean()
