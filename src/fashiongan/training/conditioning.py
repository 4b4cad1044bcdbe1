"""What the conditional GAN is conditioned on, as one typed object instead of string keys.

``encode_conditioning`` writes a dict of tensors (the catalog stores it as one safetensors
file); :meth:`Conditioning.of` reads it once at the trainer's entry, so a missing or misspelt
tensor is named there and the trainer's parts read attributes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

import torch

#: The tensors every conditioning holds; the others come with an option that reads them.
REQUIRED = (
    "text_embeddings",
    "caption_index",
    "reference_index",
    "modification_index",
    "sample_text",
)


@dataclass(frozen=True)
class Conditioning:
    """The texts' features and, per training item, which texts describe and query it.

    U texts of D features; N training items; R sample-grid captions; T tokens of H features.
    """

    text_embeddings: torch.Tensor  # (U, D) each distinct text's features
    caption_index: torch.Tensor  # (N,) each item's caption row
    reference_index: torch.Tensor  # (N,) each item's composed query's reference item
    modification_index: torch.Tensor  # (N,) that query's modification-text row
    sample_text: torch.Tensor  # (R, D) the sample grids' captions
    sample_index: torch.Tensor | None  # (R,) their rows (for a tuned encoder)
    text_attributes: torch.Tensor | None  # (U, 3) tone / fit / pattern each text states (-1: not)
    item_attributes: torch.Tensor | None  # (N, 3) the items' own tone / fit / pattern
    text_hidden: torch.Tensor | None  # (U, T, H) each text below the tuned layers
    text_mask: torch.Tensor | None  # (U, T)
    text_hidden_top_layers: torch.Tensor | None  # () below how many top layers text_hidden is

    @classmethod
    def of(cls, tensors: Mapping[str, torch.Tensor] | Conditioning) -> Conditioning:
        """The conditioning ``encode_conditioning`` wrote (a dict of tensors), typed.

        Raises:
            ValueError: naming the required tensors it lacks, or tensors it does not know.
        """
        if isinstance(tensors, Conditioning):
            return tensors
        names = {field.name for field in fields(cls)}
        missing = [name for name in REQUIRED if name not in tensors]
        unknown = sorted(set(tensors) - names)
        if missing or unknown:
            raise ValueError(
                f"the conditioning lacks {missing} and has unknown {unknown}: "
                "rerun encode_conditioning"
            )
        return cls(**{name: tensors.get(name) for name in names})

    def missing(self, *names: str) -> list[str]:
        """Which of the optional tensors ``names`` this conditioning lacks, sorted."""
        return sorted(name for name in names if getattr(self, name) is None)

    @property
    def text_dim(self) -> int:
        """D, the size of a text's features."""
        return self.text_embeddings.shape[1]
