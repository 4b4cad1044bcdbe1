"""MLflow logging that is a no-op outside an active run (tests, notebooks, non-zero ranks).

Only step-wise logging inside training loops lives here (per-step curves, sample grids). A
run's summary numbers are node outputs instead, saved by kedro-mlflow's
``MlflowMetricsHistoryDataset`` in the form :func:`metric_records` gives them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import mlflow
from matplotlib.figure import Figure


def _enabled() -> bool:
    from fashiongan.training.distributed import is_main_process

    return is_main_process() and mlflow.active_run() is not None


def log_metrics(metrics: dict[str, float], step: int) -> None:
    """Log ``metrics`` at ``step`` to the active MLflow run, if any."""
    if _enabled():
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)


def log_figure(figure: Figure, artifact_file: str) -> None:
    """Log a matplotlib figure as a PNG artifact of the active MLflow run, if any, then close it
    (a grid per epoch would otherwise stay open in pyplot for the whole run)."""
    import matplotlib.pyplot as plt

    if _enabled():
        mlflow.log_figure(figure, artifact_file)
    plt.close(figure)


def metric_records(values: Mapping[str, float | None], step: int = 0) -> dict[str, dict]:
    """``{key: value}`` → ``{key: {"value": v, "step": step}}``, what kedro-mlflow's
    ``MlflowMetricsHistoryDataset`` saves; None, NaN and inf are left out, and characters
    MLflow refuses in a metric key become ``_``."""
    return {
        re.sub(r"[^\w\-./ :]", "_", key): {"value": float(value), "step": step}
        for key, value in values.items()
        if isinstance(value, int | float) and math.isfinite(value)
    }
