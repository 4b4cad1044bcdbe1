"""Compute helpers every package shares: CPU thread scoping and batched inference."""

from __future__ import annotations

import contextlib
import logging
import os
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import torch

logger = logging.getLogger(__name__)


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. under ``taskset`` or a cgroup)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity call
        return os.cpu_count() or 1


def running_elsewhere(
    samples: int = 25, interval_s: float = 0.02, source: Path = Path("/proc/loadavg")
) -> float | None:
    """How many other tasks are running now: the median of the kernel's runnable count over
    ``samples`` reads (about half a second), less this process's reading thread. None where
    ``/proc/loadavg`` is missing (macOS, Windows).

    The runnable count is read at that moment, so unlike the load average it does not lag by a
    minute, nor count this process's own work of the last minute (loading data, encoding text).
    """
    if not source.is_file():
        return None
    counts = []
    for _ in range(samples):
        running, _, _ = source.read_text().split()[3].partition("/")  # "R/T": running / all
        counts.append(int(running) - 1)
        time.sleep(interval_s)
    return statistics.median(counts)


def busy_cores(samples: int = 25, interval_s: float = 0.02) -> float:
    """Cores other work occupies now; the 1-minute load average where that cannot be read."""
    running = running_elsewhere(samples, interval_s)
    return os.getloadavg()[0] if running is None else running


def free_cores(cores: int | None = None, busy: float | None = None) -> int:
    """Usable cores not already busy: ``cores`` minus ``busy``, rounded, at least 1.

    On a 2-core machine with one other CPU-bound process this gives 1: two torch threads would
    share one free core with that process and each step waits for the slower thread (measured in
    ``benchmarks/threads.py``: the conditional step fell to about a third of its one-thread
    speed). At most ``cores``.
    """
    cores = usable_cores() if cores is None else cores
    busy = busy_cores() if busy is None else busy
    return max(1, min(cores, round(cores - busy)))


def resolve_threads(n: int | Literal["auto"] | None) -> int | None:
    """A thread setting as torch takes it: a count as given; ``"auto"``: the :func:`free_cores`,
    at most the threads torch has now (its default, or what ``OMP_NUM_THREADS`` or a caller's
    ``torch.set_num_threads`` chose: a worker pinned to one thread stays on one)."""
    if n == "auto":
        chosen = min(free_cores(), torch.get_num_threads())
        logger.info(
            "num_threads auto: %d torch thread(s) (%d usable cores)", chosen, usable_cores()
        )
        return chosen
    return n


class FollowFreeCores:
    """``num_threads: auto`` while training: every ``every_s`` seconds, after a step, take the
    cores free then, so a competitor that starts (or ends) mid-run changes the thread count
    instead of collapsing (a shorter look than at the start: 5 reads over about 25 ms). Never
    more threads than torch had when it was made (see :func:`resolve_threads`)."""

    def __init__(self, every_s: float = 30.0) -> None:
        self.every_s, self.checked = every_s, time.monotonic()
        self.most = torch.get_num_threads()

    def __call__(self, step: int) -> None:
        if time.monotonic() - self.checked < self.every_s:
            return
        chosen = min(self.most, free_cores(busy=busy_cores(samples=5, interval_s=0.005)))
        self.checked = time.monotonic()
        if chosen != torch.get_num_threads():
            logger.info("num_threads auto: %d torch thread(s) from step %d", chosen, step)
            torch.set_num_threads(chosen)


def thread_hooks(n: int | Literal["auto"] | None) -> list[Callable[[int], None]]:
    """What a training loop runs after each step for this thread setting: auto follows the
    free cores, a count stays put. Make them before entering :func:`torch_threads`."""
    return [FollowFreeCores()] if n == "auto" else []


@contextlib.contextmanager
def torch_threads(n: int | Literal["auto"] | None) -> Iterator[None]:
    """Run with ``n`` torch CPU threads (None or 0: as is; ``"auto"``: the cores free now), then
    restore the previous count.

    Small models often run faster on one thread, and two threads collapse when another
    CPU-bound process shares a 2-core machine.
    """
    previous = torch.get_num_threads()
    n = resolve_threads(n)
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
