"""Multimodal product classifier: image CNN + title LSTM, early fusion, softmax over classes.

One module builds the model and its two ablations (``modality`` in the config): ``multimodal``
concatenates the image and text features before the fully connected head, ``image`` and
``text`` use one branch alone with the same head. The reference notebook's design: CNN with
global average pooling for the image, token embedding + LSTM for the title, concatenate, dense,
softmax (categorical cross-entropy on the logits).

Only a small CNN image branch exists: torchvision (for EfficientNet-B0) does not install beside
the pinned torch here, so ``image_branch`` accepts ``small_cnn`` alone and says why otherwise.
"""

from __future__ import annotations

import torch
from pydantic import field_validator, model_validator
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from fashiongan.config import ClassifierModel

MODALITIES = ("multimodal", "image", "text")
IMAGE_BRANCHES = ("small_cnn",)


class ClassifierConfig(ClassifierModel):
    """The block ``classifier.training.model`` plus the ablation's branches and the titles'
    vocabulary, which the trainer fixes."""

    modality: str  # multimodal | image | text
    vocab_size: int

    @field_validator("image_branch", mode="before")
    @classmethod
    def _branch_exists(cls, value: object) -> object:
        if value not in IMAGE_BRANCHES:
            raise ValueError(
                f"image_branch {value!r} is not available: only 'small_cnn' is "
                "implemented. EfficientNet-B0 needs torchvision, which cannot be installed beside "
                "the pinned torch 2.13 in this project (PyPI's torchvision fails to import with it)."
            )
        return value

    @model_validator(mode="after")
    def _sizes_fit(self) -> ClassifierConfig:
        if self.modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {self.modality!r}")
        if self.vocab_size < 2:
            raise ValueError(f"vocab_size must be >= 2 (<pad>, <unk>), got {self.vocab_size}")
        if self.n_classes < 2:
            raise ValueError(f"n_classes must be >= 2, got {self.n_classes}")
        return self

    @property
    def uses_image(self) -> bool:
        return self.modality in ("multimodal", "image")

    @property
    def uses_text(self) -> bool:
        return self.modality in ("multimodal", "text")


class SmallCNN(nn.Module):
    """(B, C, 28, 28) → [Conv3×3 stride 2 → BN → ReLU] per level → global avg pool → (B, C_last).

    Every level halves the map (28 → 14 → 7 → 4 → 2 for four levels), so the last features see
    the whole item before pooling and an epoch takes ~30 s on one CPU core. (Stride 1 at 7×7
    was slower and, after two epochs, 3 points less accurate on the validation split.)
    """

    def __init__(self, channels: int, cnn_channels: tuple[int, ...]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = channels
        for hidden in cnn_channels:
            layers += [
                nn.Conv2d(width, hidden, 3, stride=2, padding=1),
                nn.BatchNorm2d(hidden),
                nn.ReLU(),
            ]
            width = hidden
        self.net = nn.Sequential(*layers)
        self.out_dim = width

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images).mean(dim=(2, 3))  # (B, C_last): global average pooling


class TitleLSTM(nn.Module):
    """Token ids (B, L) + lengths (B,) → embedding → LSTM → last real step's hidden state (B, H)."""

    def __init__(self, vocab_size: int, embedding_dim: int, hidden: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        self.lstm = nn.LSTM(embedding_dim, hidden, batch_first=True)
        self.out_dim = hidden

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.embedding(tokens)  # (B, L, E)
        packed = pack_padded_sequence(
            x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False
        )
        _, (h_n, _) = self.lstm(packed)  # h_n: (1, B, H) at each sequence's own last token
        return h_n[-1]


class ProductClassifier(nn.Module):
    """Early fusion: concat(image features, title features) → Linear → ReLU → Dropout → logits."""

    config_class = ClassifierConfig

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        width = 0
        if c.uses_image:
            self.image = SmallCNN(c.channels, c.cnn_channels)
            width += self.image.out_dim
        if c.uses_text:
            self.text = TitleLSTM(c.vocab_size, c.embedding_dim, c.lstm_hidden)
            width += self.text.out_dim
        self.head = nn.Sequential(
            nn.Linear(width, c.fusion_hidden),
            nn.ReLU(),
            nn.Dropout(c.dropout),
            nn.Linear(c.fusion_hidden, c.n_classes),
        )

    def forward(
        self,
        images: torch.Tensor | None = None,
        tokens: torch.Tensor | None = None,
        lengths: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Class logits (B, n_classes); inputs the modality does not use may be None."""
        features = []
        if self.config.uses_image:
            if images is None:
                raise ValueError(f"a {self.config.modality} classifier needs images")
            features.append(self.image(images))  # (B, C_last)
        if self.config.uses_text:
            if tokens is None or lengths is None:
                raise ValueError(f"a {self.config.modality} classifier needs tokens and lengths")
            features.append(self.text(tokens, lengths))  # (B, H)
        return self.head(torch.cat(features, dim=1))

    @torch.no_grad()
    def predict_proba(
        self,
        images: torch.Tensor | None = None,
        tokens: torch.Tensor | None = None,
        lengths: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Softmax class probabilities (B, n_classes), in eval mode."""
        was_training = self.training
        self.eval()
        probabilities = self(images, tokens, lengths).softmax(dim=1)
        self.train(was_training)
        return probabilities
