"""Same seed and thread count → the same run, across processes (issue #30).

A run repeated in one process can hide a draw from torch's global RNG made before the trainer
seeds (the first run leaves the RNG seeded for the second); two fresh interpreters cannot.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import REPO_ROOT


def _run_in_a_fresh_process() -> subprocess.Popen:
    env = os.environ | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.training.repeat_run"],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_a_conditional_run_repeats_bit_exactly_in_another_process():
    """The default's options (text code, attention head, AC-GAN heads) through the pipeline's
    nodes: the same final losses and the same weight SHA-256 in two interpreters."""
    children = [_run_in_a_fresh_process() for _ in range(2)]
    results = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    first, second = results
    assert first["d_loss"] == second["d_loss"] and first["g_loss"] == second["g_loss"], results
    assert first["weights"] == second["weights"]
