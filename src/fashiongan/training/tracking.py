"""MLflow logging that is a no-op outside an active run (tests, notebooks, non-zero ranks)."""

from __future__ import annotations

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
