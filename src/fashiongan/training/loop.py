"""The training loop every GAN family shares: resume, progress, logging, checkpoints, NaN guard.

A family supplies ``train_step(step) -> {metric: float}``; this module owns everything around it,
so resuming, logging and checkpointing behave the same for the baseline and the conditional GAN.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

from tqdm.auto import tqdm

from fashiongan.lifecycle.signals import signals_between_steps
from fashiongan.training.checkpoint import (
    CheckpointError,
    TrainingState,
    load_checkpoint,
    load_latest,
    save_checkpoint,
)
from fashiongan.training.distributed import (
    broadcast_object,
    is_main_process,
    mean_over_ranks,
    world,
)
from fashiongan.training.runtime import check_finite
from fashiongan.training.tracking import log_metrics

logger = logging.getLogger(__name__)


def resume_all_ranks(checkpoint_dir: Path, state: TrainingState, fingerprint: str) -> Path | None:
    """Load the newest readable checkpoint; under torchrun every rank loads the one rank 0 chose.

    Rank 0 alone writes checkpoints, so it alone decides (skipping corrupt files, which it logs);
    the others load that same file from the shared directory, so all replicas restart from one
    step with one optimizer and RNG state.
    """
    if world() == 1:
        return load_latest(checkpoint_dir, state, fingerprint)
    choice: tuple[str, str | None] = ("none", None)
    if is_main_process():
        try:
            path = load_latest(checkpoint_dir, state, fingerprint)
            choice = ("loaded", None if path is None else str(path))
        except CheckpointError as err:
            choice = ("error", str(err))
    kind, detail = broadcast_object(choice)
    if kind == "error":
        raise CheckpointError(detail)
    if detail is not None and not is_main_process():
        load_checkpoint(Path(detail), state, fingerprint)
    return None if detail is None else Path(detail)


def _close_window(state: TrainingState, metric_prefix: str) -> dict[str, float]:
    """Average the open metric window into one history row (logged to MLflow) and empty it."""
    row = {name: sum(values) / len(values) for name, values in state.window.items()}
    state.window.clear()
    state.history.append({"step": state.step, **row})
    log_metrics({metric_prefix + k: v for k, v in row.items()}, step=state.step)
    return row


def _newest_checkpoint(checkpoint_dir: Path) -> Path | None:
    """The file a resume would try first (names sort by step)."""
    return max(checkpoint_dir.glob("ckpt-*.safetensors"), default=None)


@contextlib.contextmanager
def _stop_reported(state: TrainingState, checkpoint_dir: Path | None) -> Iterator[None]:
    """On Ctrl-C or SIGTERM, say where training stopped and what survives, then stop.

    Nothing is saved here: the interrupt may land mid-step (D updated, G not), and a checkpoint of
    that half-step would break the bit-exact resume; the last periodic checkpoint stands.
    """
    try:
        yield
    except KeyboardInterrupt:
        if is_main_process():
            newest = None if checkpoint_dir is None else _newest_checkpoint(checkpoint_dir)
            after = (
                "no checkpoint was written, so the next run starts over"
                if newest is None
                else f"{newest} is kept: run the same command to resume"
            )
            logger.warning("Training stopped at step %d; %s.", state.step, after)
        raise


def run_all(hooks: list[Callable[[int], None]]) -> Callable[[int], None]:
    """One ``after_step`` callback that runs ``hooks`` in order (the optional ones composed
    from the config, so the loop tests no flags)."""

    def after_step(step: int) -> None:
        for hook in hooks:
            hook(step)

    return after_step


def fit(
    state: TrainingState,
    train_step: Callable[[int], dict[str, float]],
    *,
    total_steps: int,
    log_every: int,
    checkpoint_every: int,
    checkpoint_dir: str | Path | None,
    fingerprint: str,
    resume: bool = True,
    after_step: Callable[[int], None] | None = None,
    description: str = "train",
    metric_prefix: str = "",
) -> TrainingState:
    """Run ``train_step`` until ``state.step == total_steps``.

    Metrics are averaged over each ``log_every`` window, appended to ``state.history`` and logged
    to MLflow (names prefixed by ``metric_prefix``, e.g. ``baseline/``, so that two models in one
    run stay apart); ``after_step(step)`` runs after each step (sample grids, epoch hooks). A checkpoint
    is written every ``checkpoint_every`` steps and at the end, with the open metric window, so a
    resumed run logs exactly what an uninterrupted one would. A NaN/inf metric raises before the
    checkpoint, so the last good one survives. Under torchrun the metrics are averaged over the
    ranks (every rank sees the global batch's numbers and stops on the same NaN), and only rank 0
    logs and writes checkpoints.
    """
    if log_every < 1 or checkpoint_every < 1:
        raise ValueError(
            f"log_every ({log_every}) and checkpoint_every ({checkpoint_every}) must be ≥ 1"
        )
    # One sub-folder per parameter set: changed parameters start afresh, the same ones resume.
    checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir) / fingerprint
    if checkpoint_dir is not None and resume:
        resume_all_ranks(checkpoint_dir, state, fingerprint)
    window = state.window
    bar = tqdm(
        total=total_steps, initial=state.step, desc=description, disable=not is_main_process()
    )
    with (
        bar,
        _stop_reported(state, checkpoint_dir),
        signals_between_steps(world() == 1) as stop_if_asked,
    ):
        while state.step < total_steps:
            metrics = mean_over_ranks(train_step(state.step))  # the global batch's metrics
            check_finite(state.step, **metrics)
            state.step += 1
            for name, value in metrics.items():
                window.setdefault(name, []).append(value)
            bar.update(1)
            if state.step % log_every == 0 or state.step == total_steps:
                row = _close_window(state, metric_prefix)
                bar.set_postfix({k: f"{v:.3f}" for k, v in row.items() if "loss" in k})
            if after_step is not None:
                after_step(state.step)
            at_checkpoint = state.step % checkpoint_every == 0 or state.step == total_steps
            if checkpoint_dir is not None and at_checkpoint and is_main_process():
                save_checkpoint(checkpoint_dir, state, fingerprint)
            stop_if_asked()  # Ctrl-C / SIGTERM, held until here
    if window:  # resumed from a final checkpoint whose last window was never logged
        _close_window(state, metric_prefix)
    return state
