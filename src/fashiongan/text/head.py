"""A small trainable text head over a frozen BERT's token states.

Mean pooling averages every token, so one attribute word ("loose", "slim") is diluted by the
others and the sentence vectors of "a loose dress" and "a slim dress" end up close. Tuning BERT's
top layer fixes that, at 3-4× the cost of a GAN step. This head does the cheap part of that job:
``pools`` learned attention pools read the frozen token states (cached once per text), so a pool
can weight the words the GAN needs, and a linear map adds what they found to the mean.

Its output map starts at zero, so an untrained head is exactly the encoder's plain pooling.
"""

from __future__ import annotations

import torch
from torch import nn

HEADS = ("none", "attention")


class AttentionPoolingHead(nn.Module):
    """(N, T, D) token states and their (N, T) mask → (N, D), added to the pooled sentence."""

    def __init__(self, dim: int, pools: int) -> None:
        super().__init__()
        if pools < 1:
            raise ValueError(f"head_pools must be >= 1, got {pools}")
        self.dim, self.pools = dim, pools
        self.score = nn.Linear(dim, pools)  # one attention logit per token and pool
        self.out = nn.Linear(pools * dim, dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw the attention scores from torch's global RNG (as ``nn.Linear`` does) and zero
        the output map, so that the head adds nothing to the plain pooling.

        The encoder, head included, is built before a training run seeds; the trainer calls
        this right after seeding, so the head's first weights come from the run's seed.
        """
        self.score.reset_parameters()
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        padding = ~mask.bool().unsqueeze(-1)  # (N, T, 1)
        logits = self.score(hidden).masked_fill(padding, float("-inf"))  # (N, T, P)
        weights = logits.softmax(dim=1)  # over the real tokens of each text
        pooled = torch.einsum("ntp,ntd->npd", weights, hidden)  # (N, P, D)
        return self.out(pooled.flatten(1))  # (N, D)


def build_head(kind: str, dim: int, pools: int) -> AttentionPoolingHead | None:
    """The head a ``text_encoder.head`` setting names; None for ``"none"``."""
    if kind not in HEADS:
        raise ValueError(f"head must be one of {HEADS}, got {kind!r}")
    return AttentionPoolingHead(dim, pools) if kind == "attention" else None
