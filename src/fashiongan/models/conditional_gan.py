"""Conditional multimodal GAN: (noise, BERT text features, optional reference image) → image.

Generator: a CNN encodes the reference image (or a learned "no image" map stands in), the text
and noise are projected to feature maps of the same size, everything is concatenated and a
ConvTranspose2d decoder brings it back to image size. Discriminator: a CNN whose logit is
conditioned on the text by projection (Miyato & Koyama 2018), so a real image with the wrong
caption can be called fake (matching-aware, Reed et al. 2016). Sizes are parameters: 28×28×1 for
Fashion-MNIST (2 stages of ×2), 64×64×3 for FashionIQ (3–4 stages).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from pydantic import model_validator
from torch import nn

from fashiongan.config import ConditionalModel, Count, EmbeddingParams
from fashiongan.models import without_retired

#: How a config names the text encoder saved beside the model file (``models/<name>/``).
BESIDE_MODEL_TEXT_ENCODER = "./text_encoder"
#: Options that left the code, with the value the code now always has: files of that value load.
RETIRED_OPTIONS: dict[str, Any] = {"aux_twin": False, "spectral_norm": True}


class ConditionalGANConfig(ConditionalModel):
    """The block ``conditional.training.model`` (its keys and their meaning live there) plus what
    the data and the text encoder fix when the trainer builds the networks."""

    image_size: Count
    channels: Count
    text_dim: Count  # the text features' size (all-MiniLM-L6-v2: 384)
    # Auxiliary classifier heads of D (AC-GAN): one per property, its number of values, e.g.
    # (10, 3, 3, 2) for class, tone, fit, pattern; () = none.
    aux_classes: tuple[Count, ...]
    # Which BERT produced the text features, for inference: "bundled", a Hugging Face name or
    # folder, or "./text_encoder", the encoder trained with this model and saved beside its file.
    text_encoder: str
    text_pooling: Literal["mean", "cls"]
    #: Fields that may name a path relative to the model file ("./…"), resolved when loading.
    paths_beside_model: ClassVar[tuple[str, ...]] = ("text_encoder",)

    @model_validator(mode="after")
    def _stages_fit(self) -> ConditionalGANConfig:
        if self.image_size % (2**self.stages):
            raise ValueError(
                f"image_size {self.image_size} is not divisible by 2**stages ({2**self.stages})"
            )
        return self

    @classmethod
    def from_saved(cls, values: dict[str, Any]) -> ConditionalGANConfig:
        """The config a model file's metadata names, also from files written before an option
        left the code: a retired option that was off is dropped, one that was on is refused."""
        return cls.model_validate(without_retired(values, RETIRED_OPTIONS))

    @property
    def bottom_size(self) -> int:
        return self.image_size // 2**self.stages

    @property
    def bottom_channels(self) -> int:
        return self.g_channels * 2 ** (self.stages - 1)


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)
    )


#: Images per minibatch-spread group in D (ProGAN's 4).
MINIBATCH_GROUP = 4


def group_std(x: torch.Tensor, group: int = MINIBATCH_GROUP) -> torch.Tensor:
    """(B, C, H, W) → (B, 1, H, W): the spread of each run of ``group`` consecutive images
    (features' std over the group, averaged), the same for every image of the group.

    Consecutive groups never mix the real and fake chunks D scores in one call as long as the
    chunk size is a multiple of the group; a batch the group does not divide uses a smaller one.
    """
    b, _, h, w = x.shape
    group = next(g for g in range(min(group, b), 0, -1) if b % g == 0)
    grouped = x.float().unflatten(0, (b // group, group))  # (B/G, G, C, H, W), any memory format
    deviation = grouped - grouped.mean(dim=1, keepdim=True)  # (aten::var over dim 1: 30x slower)
    spread = deviation.square().mean(dim=1).add(1e-8).sqrt().mean(dim=(1, 2, 3))  # (B/G,)
    return spread.repeat_interleave(group).view(b, 1, 1, 1).expand(b, 1, h, w).to(x.dtype)


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)
    )


class ConditionalGenerator(nn.Module):
    """G(z, text, reference image or None) → image in [-1, 1]."""

    config_class = ConditionalGANConfig

    def __init__(self, config: ConditionalGANConfig) -> None:
        super().__init__()
        self.config = c = config
        widths = [c.g_channels * 2**i for i in range(c.stages)]  # e.g. [64, 128]
        self.image_encoder = nn.Sequential(
            *[_down(cin, cout) for cin, cout in zip([c.channels, *widths], widths, strict=False)]
        )
        self.no_image = nn.Parameter(
            torch.zeros(1, c.bottom_channels, c.bottom_size, c.bottom_size)
        )
        area = c.bottom_size**2
        code_dim = c.text_code_dim or c.text_dim
        self.text_code = nn.Linear(c.text_dim, 2 * c.text_code_dim) if c.text_code_dim else None
        self.text_proj = nn.Sequential(nn.Linear(code_dim, c.text_channels * area), nn.ReLU(True))
        self.noise_proj = nn.Sequential(
            nn.Linear(c.noise_dim, c.noise_channels * area), nn.ReLU(True)
        )
        fused = c.bottom_channels + c.text_channels + c.noise_channels
        self.fuse = nn.Sequential(
            nn.Conv2d(fused, c.bottom_channels, 1, bias=False),  # 1×1: mix image, text, noise
            nn.BatchNorm2d(c.bottom_channels),
            nn.ReLU(True),
        )
        ups = [
            _up(cin, cout) for cin, cout in zip(widths[::-1][:-1], widths[::-1][1:], strict=False)
        ]
        self.decoder = nn.Sequential(
            *ups, nn.ConvTranspose2d(widths[0], c.channels, 4, 2, 1), nn.Tanh()
        )

    def forward(
        self,
        z: torch.Tensor,
        text: torch.Tensor,
        image: torch.Tensor | None = None,
        has_image: torch.Tensor | None = None,
    ) -> torch.Tensor:
        c, b = self.config, z.shape[0]
        side = (b, -1, c.bottom_size, c.bottom_size)
        no_image = self.no_image.expand(b, -1, -1, -1)
        if image is None:
            visual = no_image  # (B, Cb, s, s): text-only query
        else:
            encoded = self.image_encoder(image)  # (B, Cb, s, s)
            visual = (
                encoded
                if has_image is None
                else torch.where(has_image.view(b, 1, 1, 1), encoded, no_image)
            )
        code = text
        if self.text_code is not None:  # conditioning augmentation: a code near the text's mean
            mean, log_var = self.text_distribution(text)  # (B, K) each
            code = mean + (0.5 * log_var).exp() * z[:, : c.text_code_dim]
        h = torch.cat(
            [visual, self.text_proj(code).view(side), self.noise_proj(z).view(side)], dim=1
        )
        return self.decoder(self.fuse(h))  # (B, C, H, W)

    def text_distribution(self, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, D) text features → the text code's (mean, log variance), (B, K) each; the
        trainer keeps them near N(0, I) (KL) so that the codes of close captions overlap."""
        return self.text_code(text).chunk(2, dim=1)


class ConditionalDiscriminator(nn.Module):
    """D(image, text) → logit (no sigmoid: BCE uses logits, WGAN-GP and hinge use raw scores).

    With ``aux_classes``, D also names what it sees (class, tone, fit, pattern) from the image
    alone: ``forward(..., aux=True)`` returns ``(logit, [logits per property])``.
    """

    config_class = ConditionalGANConfig

    def __init__(self, config: ConditionalGANConfig) -> None:
        super().__init__()
        self.config = c = config
        norm = nn.utils.spectral_norm
        widths = [c.d_channels * 2**i for i in range(c.stages)]
        layers: list[nn.Module] = []
        for cin, cout in zip([c.channels, *widths], widths, strict=False):
            layers += [norm(nn.Conv2d(cin, cout, 4, 2, 1)), nn.LeakyReLU(0.2, True)]
        self.features = nn.Sequential(*layers)
        bottom = widths[-1] + int(c.minibatch_std)  # + the group-spread map
        self.embed = nn.Sequential(
            norm(nn.Linear(bottom * c.bottom_size**2, c.embed_dim)), nn.LeakyReLU(0.2, True)
        )
        self.out = norm(nn.Linear(c.embed_dim, 1))
        self.text_proj = norm(nn.Linear(c.text_dim, c.embed_dim))
        self.aux = nn.Linear(c.embed_dim, sum(c.aux_classes)) if c.aux_classes else None

    def forward(
        self, image: torch.Tensor, text: torch.Tensor, aux: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """Scores (B,) for ``text`` (B, T), or (B, k) for k captions per image (B, k, T).

        The text enters only at the projection, so k captions of one image cost one pass of
        the image layers: the matching-aware step scores each real item with its own and a
        wrong caption this way.
        """
        x = self.features(image)  # (B, Cd, s, s)
        if self.config.minibatch_std:
            x = torch.cat([x, group_std(x)], dim=1)  # (B, Cd + 1, s, s)
        h = self.embed(x.flatten(1))  # (B, embed_dim)
        projected = self.text_proj(text)  # (B, embed_dim) or (B, k, embed_dim)
        if projected.dim() == 3:
            score = self.out(h) + (projected * h[:, None]).sum(-1)  # (B, k)
        else:
            score = self.out(h).squeeze(1) + (projected * h).sum(1)  # (B,) projection
        if not aux:
            return score
        if self.aux is None:
            raise ValueError("this discriminator has no auxiliary heads (aux_classes is empty)")
        sizes = list(self.config.aux_classes)
        return score, [*self.aux(h).split(sizes, dim=1)]  # (B, K_i) each


class EmbeddingConfig(EmbeddingParams):
    """The block ``conditional.training.embedding`` plus the images' size, fixed by the data."""

    image_size: Count
    channels: Count


class ImageEmbedder(nn.Module):
    """Maps images to unit vectors; trained with triplet loss so distances mean similarity."""

    config_class = EmbeddingConfig

    def __init__(self, config: EmbeddingConfig) -> None:
        super().__init__()
        self.config = c = config
        widths = [c.width, 2 * c.width, 4 * c.width]
        blocks = [
            nn.Sequential(
                nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)
            )
            for cin, cout in zip([c.channels, *widths], widths, strict=False)
        ]  # stride-2 convs: 28 → 14 → 7 → 4
        self.net = nn.Sequential(
            *blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(widths[-1], c.dim)
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.net(images), dim=1)  # (B, dim), unit norm
