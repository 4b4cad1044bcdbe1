"""Convolutional autoencoders: a vanilla/denoising AE and a β-VAE whose decoder is a generator.

Images are (B, C, 28, 28) in [-1, 1]. The denoising AE is the vanilla architecture trained on
inputs corrupted by :func:`corrupt`. The VAE's decoder (:class:`VAEDecoder`) is a module of its
own so that it can be saved as ``models/vae/generator.safetensors`` and sampled like a GAN
generator: ``forward(z) -> images in [-1, 1]``.

The VAE's likelihood is Bernoulli on pixel intensities mapped to [0, 1] (the usual choice for
(Fashion-)MNIST): the decoder computes logits ``l`` and an image is ``2σ(l) − 1 = tanh(l / 2)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from pydantic import model_validator
from torch import nn

from fashiongan.config import AutoencoderModel

NOISE_KINDS = ("gaussian", "masking")


class AutoencoderConfig(AutoencoderModel):
    """The block ``autoencoders.<vanilla|denoising>.model`` as the network reads it."""

    @model_validator(mode="after")
    def _levels_fit(self) -> AutoencoderConfig:
        _check_geometry(self.image_size, self.channels_hidden, self.latent_dim)
        return self


class VAEConfig(AutoencoderConfig):
    """The block ``autoencoders.vae.model`` as the VAE and its decoder read it."""

    @property
    def noise_dim(self) -> int:
        """Alias of ``latent_dim``: the name the GAN generators use for their input size."""
        return self.latent_dim


def _check_geometry(image_size: int, channels_hidden: tuple[int, ...], latent_dim: int) -> None:
    if latent_dim < 1:
        raise ValueError(f"latent_dim must be >= 1, got {latent_dim}")
    if not channels_hidden:
        raise ValueError("channels_hidden needs at least one level")
    if image_size % 2 ** len(channels_hidden):
        raise ValueError(
            f"image_size {image_size} is not divisible by 2**{len(channels_hidden)}: "
            f"{len(channels_hidden)} stride-2 levels need it (28 allows at most 2)"
        )


class ConvEncoder(nn.Module):
    """(B, C, H, W) → [Conv 4×4 s2 → BN → LReLU] per level → flatten → Linear → (B, out_dim)."""

    def __init__(
        self, channels: int, channels_hidden: tuple[int, ...], image_size: int, out_dim: int
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = channels
        for hidden in channels_hidden:
            layers += [
                nn.Conv2d(width, hidden, 4, stride=2, padding=1),
                nn.BatchNorm2d(hidden),
                nn.LeakyReLU(0.2),
            ]
            width = hidden
        self.conv = nn.Sequential(*layers)
        side = image_size // 2 ** len(channels_hidden)
        self.fc = nn.Linear(width * side * side, out_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(images).flatten(1))  # (B, out_dim)


class ConvDecoder(nn.Module):
    """(B, latent) → Linear → (B, C_last, s, s) → [ConvT 4×4 s2] per level → (B, C, H, W) logits."""

    def __init__(
        self, channels: int, channels_hidden: tuple[int, ...], image_size: int, latent_dim: int
    ) -> None:
        super().__init__()
        widths = tuple(reversed(channels_hidden))  # e.g. (64, 32)
        self.side = image_size // 2 ** len(channels_hidden)
        self.fc = nn.Sequential(nn.Linear(latent_dim, widths[0] * self.side**2), nn.ReLU())
        layers: list[nn.Module] = []
        for width, next_width in zip(widths, widths[1:], strict=False):
            layers += [
                nn.ConvTranspose2d(width, next_width, 4, stride=2, padding=1),
                nn.BatchNorm2d(next_width),
                nn.ReLU(),
            ]
        layers.append(nn.ConvTranspose2d(widths[-1], channels, 4, stride=2, padding=1))
        self.deconv = nn.Sequential(*layers)
        self.first_width = widths[0]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(-1, self.first_width, self.side, self.side)  # (B, C_last, 7, 7)
        return self.deconv(h)  # (B, C, 28, 28) unbounded


class ConvAutoencoder(nn.Module):
    """Deterministic conv autoencoder: encode to ``latent_dim``, decode through tanh to [-1, 1]."""

    config_class = AutoencoderConfig

    def __init__(self, config: AutoencoderConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.encoder = ConvEncoder(c.channels, c.channels_hidden, c.image_size, c.latent_dim)
        self.decoder = ConvDecoder(c.channels, c.channels_hidden, c.image_size, c.latent_dim)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder(images)  # (B, latent_dim)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.decoder(z))  # (B, C, H, W) in [-1, 1]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(images))


class VAEDecoder(nn.Module):
    """The VAE's generator: z (B, latent_dim) → images (B, C, H, W) in [-1, 1]."""

    config_class = VAEConfig

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.net = ConvDecoder(c.channels, c.channels_hidden, c.image_size, c.latent_dim)

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)  # (B, C, H, W) Bernoulli logits of pixel intensity in [0, 1]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(0.5 * self.logits(z))  # = 2·sigmoid(logits) − 1, in [-1, 1]

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode ``n`` draws of z ~ N(0, I) in eval mode, on the module's device."""
        device = next(self.parameters()).device
        z = torch.randn(n, self.config.latent_dim, generator=generator).to(device)
        was_training = self.training
        self.eval()
        with torch.no_grad():
            images = self(z)
        self.train(was_training)
        return images


@dataclass
class ELBOTerms:
    """Per-image means, in nats: ``elbo = -(reconstruction + kl)``; ``loss`` weighs kl by β."""

    loss: torch.Tensor
    reconstruction: torch.Tensor  # −E_q[log p(x|z)]: Bernoulli NLL summed over pixels
    kl: torch.Tensor  # KL(q(z|x) ‖ N(0, I)) summed over latent dimensions

    @property
    def elbo(self) -> torch.Tensor:
        return -(self.reconstruction + self.kl)


class ConvVAE(nn.Module):
    """β-VAE: Gaussian encoder q(z|x) = N(μ, diag σ²), Bernoulli decoder, prior N(0, I)."""

    config_class = VAEConfig

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.encoder = ConvEncoder(c.channels, c.channels_hidden, c.image_size, 2 * c.latent_dim)
        self.decoder = VAEDecoder(config)

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(images).chunk(2, dim=1)  # (B, latent_dim) each
        return mu, logvar.clamp(-20.0, 10.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)  # (B, C, H, W) in [-1, 1]

    def reparameterize(
        self, mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        eps = torch.randn(mu.shape, generator=generator).to(mu.device)
        return mu + eps * torch.exp(0.5 * logvar)  # (B, latent_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Reconstruction from the posterior mean (deterministic)."""
        return self.decode(self.encode(images)[0])

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.decoder.sample(n, generator)

    def elbo_terms(
        self, images: torch.Tensor, beta: float = 1.0, generator: torch.Generator | None = None
    ) -> ELBOTerms:
        """One-sample ELBO estimate of ``images`` (B, C, H, W) in [-1, 1]."""
        mu, logvar = self.encode(images)
        z = self.reparameterize(mu, logvar, generator)
        logits = self.decoder.logits(z)
        targets = (images + 1) / 2  # pixel intensities in [0, 1]
        reconstruction = (
            F.binary_cross_entropy_with_logits(logits, targets, reduction="none").flatten(1).sum(1)
        )  # (B,)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)  # (B,)
        return ELBOTerms(
            loss=(reconstruction + beta * kl).mean(),
            reconstruction=reconstruction.mean(),
            kl=kl.mean(),
        )


def corrupt(
    images: torch.Tensor, kind: str, level: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Corrupt ``images`` (B, C, H, W) in [-1, 1] for a denoising autoencoder.

    Args:
        images: clean images in [-1, 1].
        kind: ``"gaussian"`` adds N(0, level²) noise on the [0, 1] intensity scale (so
            ``level`` is a standard deviation in intensity units), then clips to the valid range;
            ``"masking"`` sets each pixel independently with probability ``level`` to the
            background value −1 (black), as in Vincent et al.'s masking noise.
        level: the noise level (std or masked fraction).
        generator: the random stream (None: torch's global one).

    Returns:
        Corrupted images in [-1, 1], same shape.
    """
    if kind == "gaussian":
        if level < 0:
            raise ValueError(f"gaussian noise level (std) must be >= 0, got {level}")
        noise = torch.randn(images.shape, generator=generator).to(images.device)
        return (images + 2 * level * noise).clamp(-1, 1)  # 2×: [0, 1] std → [-1, 1] scale
    if kind == "masking":
        if not 0 <= level <= 1:
            raise ValueError(
                f"masking noise level (masked fraction) must be in [0, 1], got {level}"
            )
        mask = torch.rand(images.shape, generator=generator).to(images.device) < level
        return images.masked_fill(mask, -1.0)
    raise ValueError(f"Unknown noise kind {kind!r}; expected one of {NOISE_KINDS}")
