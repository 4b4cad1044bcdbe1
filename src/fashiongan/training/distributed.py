"""torch.distributed helpers: everything degrades to a single process when not launched by torchrun."""

from __future__ import annotations

import torch.distributed as dist


def is_main_process() -> bool:
    """True on rank 0, or when not running distributed."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0
