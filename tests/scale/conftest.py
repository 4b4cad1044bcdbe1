"""Helpers for the scale-out and fault tests: child processes, torchrun, free ports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

WORKER = Path(__file__).with_name("_worker.py")


def child_env(**extra: str) -> dict[str, str]:
    """The environment a child training process gets: offline, headless, one thread."""
    env = dict(os.environ)
    env.update(
        MPLBACKEND="Agg",
        KEDRO_DISABLE_TELEMETRY="1",
        DO_NOT_TRACK="1",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        OMP_NUM_THREADS="1",
        PYTHONUNBUFFERED="1",
        COLUMNS="250",  # rich log lines unwrapped
    )
    env.update(extra)
    return env


def torchrun(nproc: int, *args: str) -> list[str]:
    """``torchrun --standalone --nproc_per_node=N ...`` (rendezvous on a free local port)."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone"] + [
        f"--nproc_per_node={nproc}",
        *args,
    ]


def start(command: list[str], cwd: Path | None = None, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        command,
        cwd=cwd,
        env=child_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process: subprocess.Popen, timeout: float = 240) -> str:
    """Wait for ``process``; its output, or an AssertionError that shows it."""
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, f"{process.args} exited {process.returncode}:\n{output[-6000:]}"
    return output


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
