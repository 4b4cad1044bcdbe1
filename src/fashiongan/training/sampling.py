"""What one step of the conditional GAN trains on: its batch of targets, queries and negatives.

Every draw is of the *global* batch (B) from the shared ``rng``, in a fixed order, and each rank
keeps its slice (b = B / ranks, ``distributed.shard``): one process and N ranks see the same
samples, and a resumed run draws what the uninterrupted one drew. The epoch's order is a
permutation seeded by (seed, epoch), so resuming mid-run needs no extra state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from fashiongan.models.conditional_gan import MINIBATCH_GROUP
from fashiongan.training.distributed import shard

#: (B,) target items, (B,) their caption rows → (B,) rows of captions that do not describe them.
WrongCaptions = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def grouped_order(keys: torch.Tensor, group: int, generator: torch.Generator) -> torch.Tensor:
    """(N,) a permutation in which each run of ``group`` items shares a key (a class, a caption).

    D's minibatch spread (:func:`~fashiongan.models.conditional_gan.group_std`) scores runs of
    ``group`` consecutive images; in a plain permutation a run mixes classes, so its spread is
    mostly the gap between classes and says little about a generator that draws one item per
    caption. With runs of one key it compares the variety within a key, real against fake. Each
    key's members are shuffled and cut into runs, the runs shuffled; the few members left over
    (fewer than ``group`` per key) end the permutation, so every item still comes once.

    Args:
        keys: (N,) int64 ids 0 … K-1: class labels, or :func:`caption_meaning_keys`.
        group: items per run.
        generator: seeded by (seed, epoch), so a resumed run draws the same order.
    """
    runs, rest = [], []
    for key in range(int(keys.max()) + 1):
        members = torch.nonzero(keys == key).squeeze(1)
        members = members[torch.randperm(len(members), generator=generator)]
        whole = len(members) - len(members) % group
        runs.append(members[:whole].view(-1, group))
        rest.append(members[whole:])
    runs = torch.cat(runs)  # (R, group)
    shuffled = runs[torch.randperm(len(runs), generator=generator)].flatten()
    return torch.cat([shuffled, *rest])


def caption_meaning_keys(
    labels: torch.Tensor, caption_index: torch.Tensor, text_attributes: torch.Tensor
) -> torch.Tensor:
    """(N,) dense ids of what each item's caption asks: its class and the tone, fit and pattern
    it states (-1: not stated). Items with one id answer the same request in any wording, so
    the real images of a run show the variety one caption should be drawn with."""
    meaning = torch.cat([labels[:, None], text_attributes[caption_index]], dim=1)  # (N, 4)
    return torch.unique(meaning, dim=0, return_inverse=True)[1]


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


def same_class_contradictions(
    idx: torch.Tensor,
    uniform: torch.Tensor,
    labels: torch.Tensor,
    class_table: torch.Tensor,
    class_counts: torch.Tensor,
    caption_index: torch.Tensor,
    text_attributes: torch.Tensor,
    item_attributes: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """For each item, the caption of a random item of its class, and whether it contradicts it.

    Attribute-level negatives for the matching-aware discriminator: "a dark coat" next to a
    light coat. Other-class captions alone never make D (and so G) read the tone, fit and
    pattern words. A caption contradicts an item when it states a value the item does not have;
    one that states nothing the item lacks ("a coat") is no negative and is not used.

    Args:
        idx: (B,) item indices; uniform: (B,) in [0, 1), picks the same-class item.
        class_table, class_counts: from :func:`same_class_table`.
        caption_index: (N,) each item's text row; text_attributes: (U, 3) stated tone, fit,
            pattern per text (-1 = not stated); item_attributes: (N, 3) the items' own values.

    Returns:
        The chosen caption rows (B,) and the mask (B,) of those that contradict their item.
    """
    classes = labels[idx]
    other = class_table[classes, (uniform * class_counts[classes]).long()]
    rows = caption_index[other]
    stated = text_attributes[rows]  # (B, 3)
    contradicts = ((stated >= 0) & (stated != item_attributes[idx])).any(1)
    return rows, contradicts


def other_items_captions(idx: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """The next item's caption (mostly another class): the matching-aware D's wrong captions."""
    return rows.roll(1, dims=0)


class ContradictingCaptions:
    """Wrong captions where a ``share`` of the batch gets a same-class caption that contradicts
    its item ("a dark coat" for a light coat), the rest another item's caption: without them D
    tells captions apart by class alone and never reads tone, fit or pattern."""

    def __init__(
        self,
        share: float,
        labels: torch.Tensor,
        caption_index: torch.Tensor,
        text_attributes: torch.Tensor,
        item_attributes: torch.Tensor,
        rng: torch.Generator,
    ) -> None:
        self.share, self.rng, self.device = share, rng, labels.device
        self.labels, self.caption_index = labels, caption_index
        self.text_attributes, self.item_attributes = text_attributes, item_attributes
        self.class_table, self.class_counts = (
            t.to(self.device) for t in same_class_table(labels.cpu())
        )

    def __call__(self, idx: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        rolled = other_items_captions(idx, rows)  # (B,)
        uniform = torch.rand(len(idx), generator=self.rng).to(self.device)  # (B,) which member
        same_class, contradicts = same_class_contradictions(
            idx, uniform, self.labels, self.class_table, self.class_counts, self.caption_index,
            self.text_attributes, self.item_attributes,
        )  # fmt: skip
        chosen = (torch.rand(len(idx), generator=self.rng) < self.share).to(self.device)  # (B,)
        return torch.where(chosen & contradicts, same_class, rolled)


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
        conditioning: dict[str, torch.Tensor],
        *,
        batch_size: int,
        seed: int,
        image_drop: float,
        wrong_captions: WrongCaptions,
        rng: torch.Generator,
        group_keys: torch.Tensor | None = None,
        group: int = MINIBATCH_GROUP,
    ) -> None:
        self.images, self.labels, self.device = images, labels, images.device
        self.caption_index = conditioning["caption_index"].to(self.device)
        self.reference_index = conditioning["reference_index"].to(self.device)
        self.modification_index = conditioning["modification_index"].to(self.device)
        self.class_table, self.class_counts = (
            t.to(self.device) for t in same_class_table(labels.cpu())
        )
        self.batch_size, self.seed, self.image_drop = batch_size, seed, image_drop
        self.wrong_captions, self.rng = wrong_captions, rng
        self.group_keys, self.group = group_keys, group  # keys: each run of ``group`` shares one
        self.steps_per_epoch = len(images) // batch_size
        self._order: tuple[int, torch.Tensor] | None = None  # (epoch, its permutation)

    def targets(self, step: int) -> torch.Tensor:
        """(B,) the step's slice of its epoch's permutation, seeded by (seed, epoch)."""
        epoch, i = divmod(step, self.steps_per_epoch)
        if self._order is None or self._order[0] != epoch:
            seeded = torch.Generator().manual_seed(self.seed * 7919 + epoch)
            if self.group_keys is not None:
                order = grouped_order(self.group_keys.cpu(), self.group, seeded)
            else:
                order = torch.randperm(len(self.images), generator=seeded)
            self._order = (epoch, order)
        return self._order[1][i * self.batch_size : (i + 1) * self.batch_size].to(self.device)

    def __call__(self, step: int) -> Batch:
        """The draws, in the order the ``rng`` stream has always served them."""
        batch, images, rng = self.batch_size, self.images, self.rng
        idx = self.targets(step)  # (B,)
        rows = self.caption_index[idx]  # (B,) text rows
        wrong_rows = shard(self.wrong_captions(idx, rows))  # (b,)
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
