"""torch.distributed helpers: everything degrades to a single process when not launched by torchrun.

``torchrun --nproc_per_node=N`` starts N copies of the same program with ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` set. :func:`setup` joins them into one process
group (NCCL when the training device is CUDA, Gloo on CPU). Every rank then draws the *global*
batch from the same RNG stream and keeps its own contiguous slice (:func:`shard`); DDP averages the
gradients, so one optimizer step sees exactly the samples a single process would have seen.

With ``WORLD_SIZE`` unset or 1 every helper is the identity (``shard(x) is x``, no collectives), so
the single-process path stays bit for bit what it was.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: Set by ``fashiongan.training.launch``: the ranks were started the way that writes outputs once.
LAUNCHER_ENV = "FASHIONGAN_LAUNCHER"


def _active() -> bool:
    return dist.is_available() and dist.is_initialized()


def is_main_process() -> bool:
    """True on rank 0, or when not running distributed."""
    return not _active() or dist.get_rank() == 0


def world() -> int:
    """Number of processes in the group (1 when not distributed)."""
    return dist.get_world_size() if _active() else 1


def rank() -> int:
    """This process's rank (0 when not distributed)."""
    return dist.get_rank() if _active() else 0


def local_rank() -> int:
    """Index of this process on its machine: the GPU it drives."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def setup(device: torch.device, timeout_s: int = 1800) -> torch.device:
    """Join the torchrun process group if ``WORLD_SIZE`` > 1; return the device this rank uses.

    Idempotent: a second call (the conditional GAN after the baseline) reuses the group.

    Args:
        device: the device :func:`~fashiongan.training.runtime.pick_device` chose. ``cuda`` selects
            NCCL and this rank's GPU (``cuda:LOCAL_RANK``); ``cpu`` selects Gloo.
        timeout_s: how long a collective may wait for a missing rank before failing.

    Raises:
        ValueError: for a device torch.distributed cannot drive here (``mps``).
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return device
    if device.type not in ("cpu", "cuda"):
        raise ValueError(
            f"distributed training runs on cpu (gloo) or cuda (nccl), not {device.type}; "
            "set the training `device` parameter to cpu or cuda"
        )
    if device.type == "cuda":
        torch.cuda.set_device(local_rank())
        device = torch.device("cuda", local_rank())
    if not _active():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
        logger.info("Rank %d of %d joined the %s process group.", rank(), world(), backend)
        if not os.environ.get(LAUNCHER_ENV) and is_main_process():
            logger.warning(
                "Started by torchrun without fashiongan.training.launch: every rank saves the "
                "catalog outputs and kedro-mlflow opens one MLflow run per rank. Use "
                "`torchrun --nproc_per_node=N -m fashiongan.training.launch --pipelines=...`."
            )
    return device


def teardown() -> None:
    """Wait for every rank, then leave the process group (no-op when not distributed)."""
    if _active():
        dist.barrier()
        dist.destroy_process_group()


def barrier() -> None:
    """Block until every rank gets here (no-op when not distributed)."""
    if _active():
        dist.barrier()


def check_batch(batch_size: int, name: str = "batch_size") -> int:
    """Return this rank's share of the global batch; it must split evenly across ranks.

    Raises:
        ValueError: naming the parameter when ``batch_size`` is not a multiple of the world size.
    """
    if batch_size % world():
        raise ValueError(
            f"{name} is the global batch ({batch_size}) and must be divisible by the number of "
            f"processes ({world()}); use a multiple of {world()}"
        )
    return batch_size // world()


def shard(batch: torch.Tensor) -> torch.Tensor:
    """This rank's contiguous slice of a global batch (dim 0): ``batch`` itself in one process.

    Like ``DistributedSampler`` over the per-step (or per-epoch) permutation: the ranks' slices
    are disjoint and together are exactly the global batch a single process would use.
    """
    if world() == 1:
        return batch
    size = batch.shape[0] // world()
    return batch[rank() * size : (rank() + 1) * size]


def seed_step(seed: int, step: int) -> None:
    """Distributed only: reseed the global torch RNG (dropout masks) from (seed, step, rank).

    Ranks then draw independent dropout masks, and a run resumed from rank 0's checkpoint draws
    on every rank the masks the uninterrupted run drew (stateless, like the epoch permutation).
    """
    if world() > 1:
        torch.manual_seed((seed * 1_000_003 + step) * 4096 + rank())


def wrap_ddp(module: nn.Module, device: torch.device) -> nn.Module:
    """``DistributedDataParallel(module)`` when distributed; the module itself otherwise.

    On CUDA, BatchNorm layers become SyncBatchNorm (statistics over the global batch, as in one
    process); torch's SyncBatchNorm has no CPU kernel, so on Gloo each rank normalises with its
    own slice's statistics. Buffers (BN running stats, spectral-norm vectors) are broadcast from
    rank 0 at every forward, so all replicas — and rank 0's checkpoint — stay identical.
    """
    if world() == 1:
        return module
    if device.type == "cuda":
        module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
        return nn.parallel.DistributedDataParallel(module, device_ids=[device.index])
    return nn.parallel.DistributedDataParallel(module)


def mean_over_ranks(metrics: dict[str, float]) -> dict[str, float]:
    """Average scalar metrics over ranks so every rank logs (and NaN-checks) the global batch."""
    if world() == 1:
        return metrics
    device = torch.device("cuda", local_rank()) if dist.get_backend() == "nccl" else None
    values = torch.tensor(list(metrics.values()), dtype=torch.float64, device=device)
    dist.all_reduce(values)
    return dict(zip(metrics, (values / world()).tolist(), strict=True))


def broadcast_object(obj: T) -> T:
    """Rank 0's ``obj`` on every rank (a small JSON-like value: a path, a message)."""
    if world() == 1:
        return obj
    box: list[Any] = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
