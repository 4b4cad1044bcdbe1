"""An exponential moving average (EMA) of the generator's weights, for sampling and saving.

GAN weights oscillate around a good point as G and D chase each other; the average of the last
few hundred steps' weights usually draws cleaner, steadier images than the last step's
(Yazıcı et al. 2019, "The Unusual Effectiveness of Averaging in GAN Training"). The average only
reads the weights after each step, so training itself is unchanged: with it off, a run is
bit-identical to one without it. The averaged copy is a module like the others, so checkpoints
carry it and a resumed run continues the same average.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

#: Steps whose weights the warm-up leaves out: after n updates the decay is at most
#: (1 + n) / (WARMUP + n), so the average never keeps much of the untrained start.
WARMUP = 10


def warmed_up_decay(decay: float, updates: int, warmup: int = WARMUP) -> float:
    """The decay after ``updates`` updates: ``decay``, lowered early on to (1 + n) / (warmup + n)
    (TensorFlow's ``ExponentialMovingAverage(num_updates=…)`` rule has warmup 10).

    While the warm-up rule is the lower one, step t's weight in the average after n steps is
    about proportional to t ** (warmup - 2) (a power-function average, Karras et al. 2024): a
    smaller warmup averages a longer share of the run, whatever the run's length.

    Without it the first weights linger: after 1,686 steps (2 epochs) at 0.999, 0.999**1686 =
    18 % of the average is the untrained generator, and its images are noise (FID 152 against
    the live generator's 39 in that run; ``docs/quality.md``).
    """
    return min(decay, (1 + updates) / (warmup + updates))


def ema_with_warmup(
    decay: float, warmup: int = WARMUP
) -> Callable[[list, list, torch.Tensor], None]:
    """``AveragedModel``'s ``multi_avg_fn``: average ← average + (1 − d)(current − average),
    with d from :func:`warmed_up_decay`; integer buffers (BatchNorm's batch count) are copied."""

    @torch.no_grad()
    def update(averaged: list, current: list, updates: torch.Tensor) -> None:
        weight = 1 - warmed_up_decay(decay, int(updates), warmup)
        for average, now in zip(averaged, current, strict=True):
            if average.is_floating_point():
                average.lerp_(now, weight)
            else:
                average.copy_(now)

    return update


def generator_average(
    generator: nn.Module, decay: float | None, warmup: int = WARMUP
) -> AveragedModel | None:
    """An averaged copy of ``generator`` (``decay`` per step after ``warmup``), or None when
    ``decay`` is null/0.

    BatchNorm's running statistics are averaged with the weights (``use_buffers``, as in
    torchvision's reference training), so the copy samples in eval mode with statistics that
    drift as slowly as its weights.
    """
    if not decay:
        return None
    return AveragedModel(generator, multi_avg_fn=ema_with_warmup(decay, warmup), use_buffers=True)


def averaging_hook(average: AveragedModel, generator: nn.Module) -> Callable[[int], None]:
    """After each step: fold the generator's new weights into the average."""

    def update(step: int) -> None:
        average.update_parameters(generator)

    return update
