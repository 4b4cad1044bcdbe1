"""Epoch-based training on top of the shared loop (resume, checkpoints, NaN guard, MLflow).

``fashiongan.training.loop.fit`` counts iterations; this adapter turns it into epochs over a
shuffled training set, logs train metrics averaged over each epoch plus a validation pass at the
end of each epoch, and checkpoints at epoch boundaries so that a resumed run draws the same
batches as an uninterrupted one. The evaluator, the autoencoders and the classifier use it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from fashiongan.config import EpochTraining
from fashiongan.training.checkpoint import TrainingState, params_fingerprint
from fashiongan.training.loop import fit
from fashiongan.training.tracking import log_metrics


def fingerprint(params: EpochTraining, n_train: int, **extra: Any) -> str:
    """Hash of the parameters (and training-set size, and ``extra`` facts) that shape a run."""
    return params_fingerprint(params, n_train=n_train, **extra)


def _epoch_end(
    state: TrainingState,
    validate: Callable[[], dict[str, float]] | None,
    name: str,
    steps_per_epoch: int,
) -> Callable[[int], None]:
    """After each epoch's last step: validate (modules in eval mode) and complete its row."""
    started = time.perf_counter()

    def end_of_epoch(step: int) -> None:
        if step % steps_per_epoch:
            return
        row = state.history[-1]
        if validate is not None:
            for module in state.modules.values():
                module.eval()
            with torch.no_grad():
                scores = {f"val_{k}": float(v) for k, v in validate().items()}
            log_metrics({f"{name}/{k}": v for k, v in scores.items()}, step=step)
            row.update(scores)
        row["epoch"] = step // steps_per_epoch
        row["elapsed_s"] = round(time.perf_counter() - started, 2)

    return end_of_epoch


def fit_epochs(
    modules: dict[str, nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    rng: torch.Generator,
    *,
    n_train: int,
    batch_step: Callable[[torch.Tensor], dict[str, float]],
    validate: Callable[[], dict[str, float]] | None,
    params: EpochTraining,
    name: str,
    fingerprint_extra: dict[str, Any] | None = None,
) -> list[dict[str, float]]:
    """Train for ``params.epochs`` epochs of shuffled mini-batches.

    Args:
        modules: what the checkpoint saves; each is put in train mode before a step.
        optimizers: what the checkpoint saves with them.
        rng: the data-order (and noise) generator from ``seed_everything``.
        n_train: training-set size; batches are index tensors into it (last partial one dropped).
        batch_step: one optimisation step on the given indices; returns ``{metric: value}``.
        validate: evaluates on held-out data at each epoch end; returns ``{metric: value}``.
        params: the family's training block (``AutoencoderTraining``, ``ClassifierTraining``,
            ``EvaluatorTraining``): epochs, batch size, checkpoints (``checkpoint_dir`` None:
            none) and whatever else shapes the run (fingerprinted).
        name: MLflow metric prefix (``<name>/train_loss``) and progress-bar label.
        fingerprint_extra: other facts that shape the run (e.g. the classifier's modality), so
            that each variant keeps its own checkpoints.

    Returns:
        One row per epoch: ``step``, ``epoch``, ``train_*``, ``val_*``, ``elapsed_s``.
    """
    if n_train < 1:
        raise ValueError(f"{name}: the training set is empty")
    batch_size = min(params.batch_size, n_train)  # the block's model checked both are >= 1
    steps_per_epoch = n_train // batch_size
    state = TrainingState(modules, optimizers, rng)
    order: dict[str, torch.Tensor] = {}

    def train_step(step: int) -> dict[str, float]:
        position = step % steps_per_epoch
        if position == 0 or "perm" not in order:  # epoch start (checkpoints sit on boundaries)
            order["perm"] = torch.randperm(n_train, generator=rng)
        for module in modules.values():
            module.train()
        indices = order["perm"][position * batch_size : (position + 1) * batch_size]
        return {f"train_{k}": v for k, v in batch_step(indices).items()}

    total_steps = params.epochs * steps_per_epoch
    end_of_epoch = _epoch_end(state, validate, name, steps_per_epoch)

    fit(
        state,
        train_step,
        total_steps=total_steps,
        log_every=steps_per_epoch,
        checkpoint_every=params.checkpoint_every_epochs * steps_per_epoch,
        checkpoint_dir=params.checkpoint_dir,
        fingerprint=fingerprint(params, n_train, **(fingerprint_extra or {})),
        resume=params.resume,
        after_step=end_of_epoch,
        description=name,
        metric_prefix=f"{name}/",
    )
    for module in modules.values():
        module.eval()
    return state.history
