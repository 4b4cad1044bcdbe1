"""What one step of the conditional GAN trains on: its batch of targets, queries and negatives.

Every draw is of the *global* batch (B) from the shared ``rng``, in a fixed order, and each rank
keeps its slice (b = B / ranks, ``distributed.shard``): one process and N ranks see the same
samples, and a resumed run draws what the uninterrupted one drew. The epoch's order is a
permutation seeded by (seed, epoch), so resuming mid-run needs no extra state.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fashiongan.training.conditioning import Conditioning
from fashiongan.training.distributed import shard


def same_class_table(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(classes, max_count) table of member indices and the count per class: a uniform number
    in [0, 1) times the count picks a random member of a class without a Python loop."""
    n_classes = int(labels.max()) + 1
    members = [torch.nonzero(labels == c).squeeze(1) for c in range(n_classes)]
    counts = torch.tensor([len(m) for m in members])
    table = torch.zeros(n_classes, int(counts.max()), dtype=torch.long)
    for c, m in enumerate(members):
        table[c, : len(m)] = m
    return table, counts


def other_items_captions(rows: torch.Tensor) -> torch.Tensor:
    """The next item's caption (mostly another class): the matching-aware D's wrong captions."""
    return rows.roll(1, dims=0)


@dataclass
class Batch:
    """One step's draws, this rank's slice (b) of the global batch."""

    idx: torch.Tensor  # (b,) target items
    real: torch.Tensor  # (b, C, H, W) the targets
    reference: torch.Tensor  # (b, C, H, W) the composed queries' reference items
    has_image: torch.Tensor  # (b,) bool: a composed query (else text only)
    target_rows: torch.Tensor  # (b,) text rows: each target's own caption
    wrong_rows: torch.Tensor  # (b,) a caption that does not describe the target
    query_rows: torch.Tensor  # (b,) what G is asked: the caption, or the modification text
    positive: torch.Tensor  # (b, C, H, W) a random item of the target's class (embedder)
    negative: torch.Tensor  # (b, C, H, W) a random item (embedder)


class BatchSampler:
    """Draws each step's :class:`Batch`: targets in a per-epoch order, query kinds, negatives."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        conditioning: Conditioning,
        *,
        batch_size: int,
        seed: int,
        image_drop: float,
        rng: torch.Generator,
    ) -> None:
        self.images, self.labels, self.device = images, labels, images.device
        self.caption_index = conditioning.caption_index.to(self.device)
        self.reference_index = conditioning.reference_index.to(self.device)
        self.modification_index = conditioning.modification_index.to(self.device)
        self.class_table, self.class_counts = (
            t.to(self.device) for t in same_class_table(labels.cpu())
        )
        self.batch_size, self.seed, self.image_drop = batch_size, seed, image_drop
        self.rng = rng
        self.steps_per_epoch = len(images) // batch_size
        self._order: tuple[int, torch.Tensor] | None = None  # (epoch, its permutation)

    def targets(self, step: int) -> torch.Tensor:
        """(B,) the step's slice of its epoch's permutation, seeded by (seed, epoch)."""
        epoch, i = divmod(step, self.steps_per_epoch)
        if self._order is None or self._order[0] != epoch:
            seeded = torch.Generator().manual_seed(self.seed * 7919 + epoch)
            self._order = (epoch, torch.randperm(len(self.images), generator=seeded))
        return self._order[1][i * self.batch_size : (i + 1) * self.batch_size].to(self.device)

    def __call__(self, step: int) -> Batch:
        """The draws, in the order the ``rng`` stream has always served them."""
        batch, images, rng = self.batch_size, self.images, self.rng
        idx = self.targets(step)  # (B,)
        rows = self.caption_index[idx]  # (B,) text rows
        wrong_rows = shard(other_items_captions(rows))  # (b,)
        idx, target_rows = shard(idx), shard(rows)  # (b,) each
        has_image = shard((torch.rand(batch, generator=rng) >= self.image_drop).to(self.device))
        query_rows = torch.where(has_image, self.modification_index[idx], target_rows)  # (b,)
        negative = shard(torch.randint(0, len(images), (batch,), generator=rng).to(self.device))
        classes = self.labels[idx]  # (b,)
        uniform = shard(torch.rand(batch, generator=rng).to(self.device))  # (b,) which member
        positive = self.class_table[classes, (uniform * self.class_counts[classes]).long()]
        return Batch(
            idx=idx,
            real=images[idx],
            reference=images[self.reference_index[idx]],
            has_image=has_image,
            target_rows=target_rows,
            wrong_rows=wrong_rows,
            query_rows=query_rows,
            positive=images[positive],
            negative=images[negative],
        )
