"""The reference notebook's MLP baseline GAN (its checkpoint experiment), layer for layer."""

from __future__ import annotations

import torch
from torch import nn

from fashiongan.config import MLPModel


class MLPGANConfig(MLPModel):
    """The block ``baseline.training.model`` as the networks read it (its keys live there)."""

    @property
    def image_dim(self) -> int:
        return self.channels * self.image_size * self.image_size


class MLPGenerator(nn.Module):
    """noise 100 → Dense 256 → LReLU → Dropout → 512 → … → 1024 → … → Dense 784 → tanh → 28×28."""

    config_class = MLPGANConfig

    def __init__(self, config: MLPGANConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        width = config.noise_dim
        for hidden in config.generator_hidden:
            layers += [
                nn.Linear(width, hidden),
                nn.LeakyReLU(config.leaky_slope),
                nn.Dropout(config.dropout),
            ]
            width = hidden
        layers += [nn.Linear(width, config.image_dim), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        c = self.config
        return self.net(z).view(
            -1, c.channels, c.image_size, c.image_size
        )  # (B, C, H, W) in [-1, 1]

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``n`` images in eval mode (dropout off), on the module's device."""
        device = next(self.parameters()).device
        z = torch.randn(n, self.config.noise_dim, generator=generator).to(device)
        was_training = self.training
        self.eval()
        with torch.no_grad():
            images = self(z)
        self.train(was_training)
        return images


class MLPDiscriminator(nn.Module):
    """Flatten 784 → Dense 512 → LReLU → Dense 256 → LReLU → Dense 1 (logit; sigmoid in the loss)."""

    config_class = MLPGANConfig

    def __init__(self, config: MLPGANConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = [nn.Flatten()]
        width = config.image_dim
        for hidden in config.discriminator_hidden:
            layers += [nn.Linear(width, hidden), nn.LeakyReLU(config.leaky_slope)]
            width = hidden
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images).squeeze(1)  # (B,) logits; sigmoid is the notebook's output
