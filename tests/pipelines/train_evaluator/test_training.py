import pytest
import torch

import fashiongan.training.evaluator as evaluator_training
from fashiongan.config import overridden
from fashiongan.training.evaluator import train_evaluator_cnn
from tests.pipelines.train_evaluator.conftest import tiny_input


def _drop_wall_time(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "elapsed_s"} for row in history]


def test_a_resumed_run_equals_an_uninterrupted_one(training, tmp_path, monkeypatch):
    """Interrupted after epoch 1 of 3, the resumed run ends with the same model and history.

    The one-cycle schedule is not in the checkpoint; it must continue from the optimizer's step
    count, or the learning rates (and so the weights) after the resume would differ.
    """
    data = tiny_input()
    params = overridden(training, epochs=3, checkpoint_every_epochs=1, resume=True)
    straight, history = train_evaluator_cnn(
        data, overridden(params, checkpoint_dir=str(tmp_path / "straight"))
    )
    resumed_params = overridden(params, checkpoint_dir=str(tmp_path / "resumed"))
    validate = evaluator_training.validation_loss_and_accuracy
    calls = []

    def interrupted_after_epoch_one(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the end of epoch 2: its checkpoint is never written
        return validate(*args, **kwargs)

    monkeypatch.setattr(
        evaluator_training, "validation_loss_and_accuracy", interrupted_after_epoch_one
    )
    with pytest.raises(KeyboardInterrupt):
        train_evaluator_cnn(data, resumed_params)
    monkeypatch.setattr(evaluator_training, "validation_loss_and_accuracy", validate)
    resumed, resumed_history = train_evaluator_cnn(data, resumed_params)

    assert [row["epoch"] for row in resumed_history] == [1, 2, 3]
    assert _drop_wall_time(resumed_history) == _drop_wall_time(history)
    for (name, a), b in zip(
        straight.state_dict().items(), resumed.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
