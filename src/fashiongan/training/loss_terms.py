"""The conditional GAN's optional loss terms, composed from the config by :func:`compose_terms`.

Each term is a small callable that reads one step's :class:`Pass` and returns its weighted loss
(added to D's or G's) and the metrics it reports. A term that is off is simply not in the list,
so the training step has no flags to test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from fashiongan.config import ConditionalTraining
from fashiongan.training.distributed import shard
from fashiongan.training.losses import auxiliary_loss, gaussian_kl, gradient_penalty
from fashiongan.training.sampling import Batch


@dataclass
class Texts:
    """This step's caption features, (b, D) each."""

    target: torch.Tensor  # each target's own caption: what D judges against
    wrong: torch.Tensor  # a caption that does not describe the target
    query: torch.Tensor  # what G is asked for


@dataclass
class Pass:
    """What one D or G pass produced, for the terms to read."""

    batch: Batch
    texts: Texts
    noise: torch.Tensor  # (b, Z) the fakes' noise
    fake: torch.Tensor  # (b, C, H, W)
    heads: list[torch.Tensor] = field(default_factory=list)  # D's auxiliary logits, (n, K_i)


#: A term: one pass → (its weighted loss (), {metric name: value ()}).
Term = Callable[[Pass], tuple[torch.Tensor, dict[str, torch.Tensor]]]


class GradientPenalty:
    """WGAN-GP: keeps the critic 1-Lipschitz between real and fake images (D's loss only)."""

    def __init__(self, d: nn.Module, weight: float, batch_size: int, rng: torch.Generator):
        self.d, self.weight, self.batch_size, self.rng = d, weight, batch_size, rng

    def __call__(self, step: Pass) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        real = step.batch.real
        alpha = shard(torch.rand(self.batch_size, generator=self.rng).to(real.device))  # (b,)
        critic = lambda x: self.d(x, step.texts.target)  # noqa: E731
        return self.weight * gradient_penalty(critic, real, step.fake.detach().float(), alpha), {}


class AuxiliaryHeads:
    """AC-GAN: D names what real items are (class, tone, fit, pattern) and G's fakes must be
    named as what the query asked for, so the attribute words steer the images."""

    def __init__(
        self,
        weight: float,
        labels: torch.Tensor,
        caption_index: torch.Tensor,
        text_attributes: torch.Tensor,
        item_attributes: torch.Tensor,
    ) -> None:
        self.weight, self.labels, self.caption_index = weight, labels, caption_index
        self.text_attributes, self.item_attributes = text_attributes, item_attributes

    def asked(self, batch: Batch) -> torch.Tensor:
        """(b, 4) what each fake was asked to be: a composed query fixes every attribute, a
        caption those it states (-1: not stated, no loss)."""
        idx = batch.idx
        stated = self.text_attributes[self.caption_index[idx]]  # (b, 3)
        attributes = torch.where(batch.has_image[:, None], self.item_attributes[idx], stated)
        return torch.cat([self.labels[idx, None], attributes], 1)

    def on_real(self, step: Pass) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """D's term: the heads over [real | fake] (2b,), scored on the real half."""
        idx = step.batch.idx
        truth = torch.cat([self.labels[idx, None], self.item_attributes[idx]], 1)  # (b, 4)
        loss = auxiliary_loss([h[: len(idx)] for h in step.heads], truth)
        return self.weight * loss, {"d_aux_loss": loss}

    def on_fake(self, step: Pass) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """G's term: the fakes named as asked by the heads."""
        loss = auxiliary_loss(step.heads, self.asked(step.batch))
        return self.weight * loss, {"g_aux_loss": loss}


class ModeSeeking:
    """Mode seeking (Mao et al. 2019) on half a batch: different noise, different images."""

    def __init__(
        self, g: nn.Module, weight: float, batch_size: int, noise_dim: int, rng: torch.Generator
    ) -> None:
        self.g, self.weight, self.rng = g, weight, rng
        self.batch_size, self.noise_dim = batch_size, noise_dim

    def __call__(self, step: Pass) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        z_a, batch, query = step.noise, step.batch, step.texts.query
        z_b = torch.randn(self.batch_size // 2, self.noise_dim, generator=self.rng)
        z_b = shard(z_b.to(z_a.device))  # (h, Z): per rank, its first half
        h = len(z_b)
        other = self.g(z_b, query[:h], batch.reference[:h], batch.has_image[:h])  # (h, C, H, W)
        ratio = (step.fake[:h] - other).abs().mean() / (z_a[:h] - z_b).abs().mean()
        diversity = 1.0 / (ratio.float() + 1e-5)
        return self.weight * diversity, {"g_diversity_loss": diversity}


class TextCodePrior:
    """Conditioning augmentation's prior (StackGAN): the text codes G draws stay near N(0, I),
    so a caption's code spreads into its neighbours' instead of collapsing to a point."""

    def __init__(self, g: nn.Module, weight: float) -> None:
        self.g, self.weight = g, weight  # g unwrapped: DDP forwards only ``forward``

    def __call__(self, step: Pass) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        kl = gaussian_kl(*self.g.text_distribution(step.texts.query))
        return self.weight * kl, {"g_text_kl_loss": kl}


def compose_terms(
    params: ConditionalTraining,
    nets: tuple[nn.Module, nn.Module],
    aux: AuxiliaryHeads | None,
    noise_dim: int,
    rng: torch.Generator,
) -> tuple[list[Term], list[Term]]:
    """D's and G's optional terms, in the order they are added to the losses.

    Args:
        nets: the (possibly DDP-wrapped) generator and discriminator the terms run.
        aux: the auxiliary-heads term, or None when ``aux_weight`` is 0.
    """
    g, d = nets
    d_terms: list[Term] = [] if aux is None else [aux.on_real]
    g_terms: list[Term] = [] if aux is None else [aux.on_fake]
    if params.loss == "wgan-gp":
        d_terms.append(GradientPenalty(d, params.gp_lambda, params.batch_size, rng))
    if params.diversity_weight > 0:
        g_terms.append(ModeSeeking(g, params.diversity_weight, params.batch_size, noise_dim, rng))
    if params.model.text_code_dim:
        g_terms.append(TextCodePrior(getattr(g, "module", g), params.text_kl_weight))
    return d_terms, g_terms
