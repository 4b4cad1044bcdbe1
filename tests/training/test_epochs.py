import pytest
import torch

from fashiongan.training.epochs import fit_epochs

DATA = torch.randn(40, 3, generator=torch.Generator().manual_seed(0))


def _train(epochs: int, checkpoint_dir, seed: int = 0):
    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 3)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    rng = torch.Generator().manual_seed(seed)

    def batch_step(indices):
        loss = torch.nn.functional.mse_loss(model(DATA[indices]), DATA[indices])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return {"loss": loss.item()}

    def validate():
        return {"loss": torch.nn.functional.mse_loss(model(DATA), DATA).item()}

    params = {"epochs": epochs, "batch_size": 16, "lr": 1e-2, "checkpoint_dir": str(checkpoint_dir)}
    history = fit_epochs(
        {"m": model}, {"m": optimizer}, rng, n_train=len(DATA), batch_step=batch_step,
        validate=validate, params=params, name="toy",
    )  # fmt: skip
    return model, history


def test_epoch_history_and_resume_equals_an_uninterrupted_run(tmp_path):
    model, history = _train(3, tmp_path / "straight")
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert [row["step"] for row in history] == [2, 4, 6]  # 40 // 16 = 2 batches an epoch
    assert {"train_loss", "val_loss", "elapsed_s"} <= set(history[0])
    _train(1, tmp_path / "resumed")
    resumed, resumed_history = _train(3, tmp_path / "resumed")
    assert torch.equal(resumed.weight, model.weight)
    drop = {"elapsed_s"}
    assert [{k: v for k, v in r.items() if k not in drop} for r in resumed_history] == [
        {k: v for k, v in r.items() if k not in drop} for r in history
    ]


def test_bad_settings_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="epochs and batch_size must be >= 1"):
        _train(0, tmp_path)
