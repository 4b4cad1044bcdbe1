"""Train the evaluator CNN (the judge of every generator) on the shared epoch loop.

AdamW with a one-cycle learning rate over all epochs, optional label smoothing and random
horizontal flips, a validation pass after each epoch; the epoch with the best validation
accuracy is kept. ``fit_epochs`` brings resume, checkpoints, the NaN guard and MLflow metrics.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from fashiongan.compute import batched
from fashiongan.config import EvaluatorTraining
from fashiongan.models.evaluator import EvaluatorCNN, EvaluatorConfig
from fashiongan.training.epochs import fit_epochs
from fashiongan.training.runtime import pick_device, seed_everything


class BestEpoch(nn.Module):
    """A copy of the model at its best validation accuracy so far.

    A module, so that checkpoints carry it: a resumed run still returns the best epoch even
    when that epoch was trained before the interruption.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = copy.deepcopy(model)  # a fresh init would draw from torch's global RNG
        self.register_buffer("accuracy", torch.tensor(-1.0, dtype=torch.float64))

    def offer(self, model: nn.Module, accuracy: float) -> None:
        """Keep ``model``'s weights if ``accuracy`` beats the best so far (ties keep the older)."""
        if accuracy > self.accuracy.item():
            self.model.load_state_dict(model.state_dict())
            self.accuracy.fill_(accuracy)


def _sync_schedule(schedule: torch.optim.lr_scheduler.LRScheduler, optimizer) -> None:
    """Point the schedule at the optimizer's step count (a no-op unless a checkpoint was loaded).

    Checkpoints hold the optimizer (its state counts the steps taken and its param groups hold
    the current learning rate and momentum) but not the schedule, which a resumed run rebuilds
    at step 0; this puts it back on the step the optimizer reached.
    """
    state = next(iter(optimizer.state.values()), None)
    taken = 0 if state is None else int(state["step"])
    if schedule.last_epoch != taken:
        schedule.last_epoch = taken


def validation_loss_and_accuracy(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int
) -> dict[str, float]:
    """Mean cross-entropy and accuracy of ``model`` (in its current mode) on held-out images.

    Sums are taken per batch and added in order (float64), as the history has always recorded.
    """
    device = next(model.parameters()).device

    def sums(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # (1, 2): loss sum, correct
        logits = model(x)  # (B, n_classes)
        loss = F.cross_entropy(logits, y, reduction="sum")
        return torch.stack([loss, (logits.argmax(1) == y).sum().float()])[None]

    per_batch = batched(sums, images, labels, batch_size=batch_size, device=device).tolist()
    return {
        "loss": sum(loss for loss, _ in per_batch) / len(images),
        "accuracy": sum(int(correct) for _, correct in per_batch) / len(images),
    }


def train_evaluator_cnn(
    model_input: dict[str, torch.Tensor], params: EvaluatorTraining
) -> tuple[EvaluatorCNN, list[dict[str, float]]]:
    """Train on the training split; return the best-validation model and one row per epoch.

    Deterministic for a seed on the CPU (same thread count): the data order and the flips come
    from the one generator ``seed_everything`` returns, drawn in the same order as before.

    Returns:
        The selected model (CPU, eval mode) and the history (``step``, ``epoch``,
        ``train_loss``, ``train_accuracy``, ``val_loss``, ``val_accuracy``, ``elapsed_s``).
    """
    rng = seed_everything(params.seed)
    device = pick_device(params.device)
    model = EvaluatorCNN(EvaluatorConfig(**params.model.model_dump())).to(device)
    best = BestEpoch(model).to(device)
    images, labels = model_input["train_images"], model_input["train_labels"]
    steps_per_epoch = len(images) // min(params.batch_size, len(images))  # partial batch dropped
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=params.lr, weight_decay=params.weight_decay
    )
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=params.lr,
        total_steps=params.epochs * steps_per_epoch,
        pct_start=params.warmup_fraction,
    )

    def batch_step(indices: torch.Tensor) -> dict[str, float]:
        x, y = images[indices], labels[indices]  # (B, 1, 28, 28), (B,)
        x, y = x.to(device), y.to(device)
        _sync_schedule(schedule, optimizer)
        logits = model(x)  # (B, n_classes)
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        return {"loss": loss.item(), "accuracy": (logits.argmax(1) == y).sum().item() / len(y)}

    def validate() -> dict[str, float]:
        scores = validation_loss_and_accuracy(
            model,
            model_input["validation_images"],
            model_input["validation_labels"],
            params.eval_batch_size,
        )
        best.offer(model, scores["accuracy"])
        return scores

    history = fit_epochs(
        {"model": model, "best": best},
        {"model": optimizer},
        rng,
        n_train=len(images),
        batch_step=batch_step,
        validate=validate,
        params=params,
        name="evaluator",
        # The one-cycle schedule spans all epochs: another count is another run, not a longer one.
        fingerprint_extra={"epochs": params.epochs},
    )
    return best.model.cpu().eval(), history
