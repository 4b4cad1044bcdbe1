"""The caption features the conditional GAN reads: one interface, frozen or tuned.

:class:`CachedTextFeatures` looks the features up in the table the conditioning cached, and its
``step`` does nothing. :class:`TunedTextFeatures` runs the text encoder's trainable top layers
and its head, if any, on the cached output of the frozen layers each step; D and G read a leaf
copy of those features, so the gradients of every loss that reads a caption (summed over the critic steps and G's step)
run back through the layers once, in ``step``. Dropout stays off in those layers: a caption's
features depend on the weights only, so resuming stays exact.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import torch
from torch import nn

from fashiongan.config import ConditionalTraining
from fashiongan.training import distributed
from fashiongan.training.conditioning import Conditioning

if TYPE_CHECKING:
    from fashiongan.text.encoder import TextEncoder

_RERUN = "rerun encode_conditioning with the same text_encoder parameters"


class TextFeatures(Protocol):
    """What the trainer asks of the caption features, whichever kind they are."""

    modules: dict[str, nn.Module]  # checkpointed with G, D and E
    optimizers: dict[str, torch.optim.Optimizer]

    def read(self, rows: torch.Tensor) -> torch.Tensor:
        """(R,) text rows → (R, D) features for this step's losses."""

    def samples(self) -> torch.Tensor:
        """(S, D) the sample grid's captions, with the current weights."""

    def step(self) -> None:
        """Apply this step's gradients on the features (after G's step)."""

    def close(self) -> None:
        """Leave the encoder where the pipeline expects it (the CPU)."""


class CachedTextFeatures:
    """Frozen features: rows of the cached ``text_embeddings`` table; nothing to train."""

    def __init__(self, conditioning: Conditioning, device: torch.device) -> None:
        self.table = conditioning.text_embeddings.float().to(device)  # (U, D)
        self.sample_text = conditioning.sample_text.float().to(device)  # (S, D)
        self.modules: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}

    def read(self, rows: torch.Tensor) -> torch.Tensor:
        return self.table[rows]

    def samples(self) -> torch.Tensor:
        return self.sample_text

    def step(self) -> None:
        pass

    def close(self) -> None:
        pass


class TunedTextFeatures:
    """The encoder's trainable top layers and head over the cached hidden states, trained in
    place (Adam each: ``text_lr`` for BERT's layers, ``text_head_lr`` for the new head)."""

    def __init__(
        self,
        conditioning: Conditioning,
        encoder: TextEncoder,
        params: ConditionalTraining,
        device: torch.device,
    ) -> None:
        self.encoder = encoder.to_device(device)
        self.hidden = conditioning.text_hidden.float().to(device)  # (U, T, H)
        self.mask = conditioning.text_mask.long().to(device)  # (U, T)
        self.sample_index = conditioning.sample_index.to(device)  # (S,)
        # Checkpoint keys: "T" the tuned top layers, "H" the head (a resumed run continues both).
        self.modules: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        rates = {"T": params.text_lr, "H": params.text_head_lr}
        for key, module in (("T", encoder.top_layers), ("H", encoder.head)):
            if module is not None and list(module.parameters()):  # k = 0: no layers
                self.modules[key] = module
                self.optimizers[key] = torch.optim.Adam(module.parameters(), lr=rates[key])
        self._features: torch.Tensor | None = None  # this step's output, with its graph
        self._leaf: torch.Tensor | None = None  # the copy D and G read; collects their gradients

    def features(self, rows: torch.Tensor) -> torch.Tensor:
        """(R,) rows → (R, D), each distinct text through the layers once."""
        unique, inverse = torch.unique(rows, return_inverse=True)
        length = int(self.mask[unique].sum(1).max())  # right-padded: drop shared padding
        return self.encoder.top(self.hidden[unique, :length], self.mask[unique, :length])[inverse]

    def read(self, rows: torch.Tensor) -> torch.Tensor:
        self._features = self.features(rows)
        self._leaf = self._features.detach().requires_grad_()
        return self._leaf

    def samples(self) -> torch.Tensor:
        return self.features(self.sample_index)

    def step(self) -> None:
        for optimizer in self.optimizers.values():
            optimizer.zero_grad(set_to_none=True)
        self._features.backward(self._leaf.grad)  # D's and G's gradients, through the layers once
        for optimizer in self.optimizers.values():
            optimizer.step()

    def close(self) -> None:
        self.encoder.to_device("cpu")


def _check_tuning_cache(conditioning: Conditioning, k: int) -> None:
    """The hidden states must be cached below exactly the ``k`` tuned layers."""
    missing = conditioning.missing(
        "text_hidden", "text_mask", "text_hidden_top_layers", "sample_index"
    )
    if missing:
        raise ValueError(
            f"fine-tuning the text encoder's top layers needs {missing} in the "
            f"conditioning: {_RERUN}"
        )
    cached_k = int(conditioning.text_hidden_top_layers)
    if cached_k != k:  # another k's cache would run a layer twice, or skip one
        raise ValueError(
            f"fine-tuning the text encoder's top {k} layers needs the conditioning cached "
            f"below them, but it was cached below {cached_k}: {_RERUN}"
        )
    if len(conditioning.text_hidden) != len(conditioning.text_embeddings):
        raise ValueError(
            f"text_hidden has {len(conditioning.text_hidden)} texts but text_embeddings "
            f"{len(conditioning.text_embeddings)}"
        )


def text_features(
    conditioning: Conditioning,
    text_encoder: TextEncoder | None,
    params: ConditionalTraining,
    device: torch.device,
) -> CachedTextFeatures | TunedTextFeatures:
    """The tuned features when the encoder has trainable top layers or a head, else the cached
    ones.

    Raises:
        ValueError: when the conditioning was cached for other layers, or under torchrun.
    """
    if text_encoder is None or not text_encoder.trainable:
        return CachedTextFeatures(conditioning, device)
    _check_tuning_cache(conditioning, text_encoder.trainable_top_layers)
    if distributed.world() > 1:
        raise ValueError(
            "training the text encoder's top layers or head is not supported under torchrun: "
            "set conditional.text_encoder.trainable_top_layers to 0 and head to none"
        )
    return TunedTextFeatures(conditioning, text_encoder, params, device)
