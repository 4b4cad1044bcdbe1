"""One training of a variant at a time: a lock in each checkpoint folder the pipeline trains into.

Two trainings of the same variant (namespace and ``run_name``) would write the same checkpoints
and model folder, the last one winning. The first to start holds
``<checkpoint_dir>/.<run_name>.lock``; a second one is refused in one line, before MLflow opens
a run. The lock is the operating system's (``flock``), so it dies with its process, SIGKILL
included: a lock file left behind never blocks anyone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout


class RunRefused(Exception):
    """A run that must not start; its message is the one line the user reads (exit 2)."""


def training_folders(param_inputs: list[str], params: Mapping[str, Any]) -> dict[str, Path]:
    """``<block>.checkpoint_dir`` → its folder, for each ``params:<block>`` the pipeline reads
    that names one (a training block with checkpoints).

    The blocks are dicts, or the typed models Kedro builds from the nodes' type hints.
    """
    folders = {}
    for name in sorted(param_inputs):
        block: Any = params
        for key in name.removeprefix("params:").split("."):
            block = _child(block, key)
        if folder := _child(block, "checkpoint_dir"):
            folders[f"{name.removeprefix('params:')}.checkpoint_dir"] = Path(folder)
    return folders


def _child(block: Any, key: str) -> Any:
    if isinstance(block, Mapping):
        return block.get(key)
    return getattr(block, key, None) if hasattr(block, "model_fields") else None


def usable_folder(key: str, folder: Path) -> Path:
    """Create ``folder`` if needed; refuse, naming ``key``, one that is a file or cannot be made.

    Checked before training, not at the first checkpoint minutes later, and with the reason
    that applies (Python reports a folder under ``/proc`` as "No such file or directory").
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        blocking = next((p for p in (folder, *folder.parents) if p.exists()), folder)
        reason = (
            f"{blocking} is a file, not a folder"
            if not blocking.is_dir()
            else f"no folder can be created in {blocking} ({err.strerror})"
        )
        raise RunRefused(
            f"{key} {folder} cannot be used: {reason}; set {key} to a folder you can write"
        ) from err
    return folder


def is_launcher_rank() -> bool:
    """Rank 0 under torchrun (which sets ``RANK``), or a single process: the one that locks."""
    return os.environ.get("RANK", "0") == "0"


class VariantLocks:
    """The locks this process holds for the variant it trains; released when the run ends."""

    def __init__(self) -> None:
        self._held: list[FileLock] = []

    def acquire(self, folders: Mapping[str, Path], variant: str) -> list[Path]:
        """Lock ``.<variant>.lock`` in each folder, all or none; return the lock files.

        Raises:
            RunRefused: a folder cannot be used, or another process trains this variant there.
        """
        self.release()  # left by a run a Ctrl-C stopped earlier in this process (a notebook)
        unique = {folder.resolve(): (key, folder) for key, folder in folders.items()}
        try:
            for key, folder in unique.values():
                lock = FileLock(
                    usable_folder(key, folder) / f".{variant}.lock",
                    timeout=0,
                    fallback_to_soft=False,  # a soft lock file would outlive a SIGKILL
                )
                self._acquire_one(lock, key, folder, variant)
        except BaseException:
            self.release()
            raise
        return [Path(lock.lock_file) for lock in self._held]

    def _acquire_one(self, lock: FileLock, key: str, folder: Path, variant: str) -> None:
        try:
            lock.acquire()
        except Timeout:
            raise RunRefused(
                f"another training of variant {variant!r} is running in {folder} (it holds "
                f"{lock.lock_file}): wait for it to end, or train another variant "
                "(--params run_name=<name>)"
            ) from None
        except OSError as err:
            raise RunRefused(
                f"{key} {folder} cannot be used: cannot write {lock.lock_file} "
                f"({err.strerror}); set {key} to a folder you can write"
            ) from err
        self._held.append(lock)

    def release(self) -> None:
        """Let another process train the variant."""
        for lock in self._held:
            lock.release()
        self._held = []
