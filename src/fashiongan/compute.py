"""Compute helpers every package shares: CPU thread scoping and batched inference."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run with ``n`` torch CPU threads (None or 0: as is), then restore the previous count.

    Small models often run faster on one thread, and two threads collapse when another
    CPU-bound process shares a 2-core machine.
    """
    previous = torch.get_num_threads()
    if n:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@torch.no_grad()
def batched(
    fn: Callable[..., torch.Tensor],
    *tensors: torch.Tensor | None,
    batch_size: int,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """``fn`` over aligned slices of ``tensors`` (None passes through), concatenated on the CPU.

    Args:
        fn: takes one slice of each tensor (moved to ``device`` when given).
        tensors: aligned along dim 0; at least one is not None.
        batch_size: rows per call.
    """
    n = len(next(t for t in tensors if t is not None))
    outputs = []
    for start in range(0, n, batch_size):
        args = [None if t is None else t[start : start + batch_size] for t in tensors]
        if device is not None:
            args = [None if a is None else a.to(device) for a in args]
        outputs.append(fn(*args).cpu())
    return torch.cat(outputs)
