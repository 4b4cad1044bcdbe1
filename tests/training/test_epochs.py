import hashlib
import json

import torch

from fashiongan.config import load_parameters, overridden
from fashiongan.training.epochs import fingerprint, fit_epochs
from tests.conftest import REPO_ROOT

DATA = torch.randn(40, 3, generator=torch.Generator().manual_seed(0))
BLOCKS = load_parameters(REPO_ROOT / "conf")


def _train(params, seed: int = 0):
    """A linear autoencoder on DATA under ``params`` (any typed training block)."""
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

    history = fit_epochs(
        {"m": model}, {"m": optimizer}, rng, n_train=len(DATA), batch_step=batch_step,
        validate=validate, params=params, name="toy",
    )  # fmt: skip
    return model, history


def autoencoder_block(epochs: int, checkpoint_dir):
    return overridden(
        BLOCKS["autoencoders"].vanilla,
        epochs=epochs, batch_size=16, checkpoint_every_epochs=1,
        checkpoint_dir=str(checkpoint_dir), resume=True,
    )  # fmt: skip


def test_epoch_history_and_resume_equals_an_uninterrupted_run(tmp_path):
    model, history = _train(autoencoder_block(3, tmp_path / "straight"))
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert [row["step"] for row in history] == [2, 4, 6]  # 40 // 16 = 2 batches an epoch
    assert {"train_loss", "val_loss", "elapsed_s"} <= set(history[0])
    assert len(list((tmp_path / "straight").rglob("ckpt-*.safetensors"))) == 2  # newest two
    _train(autoencoder_block(1, tmp_path / "resumed"))
    resumed, resumed_history = _train(autoencoder_block(3, tmp_path / "resumed"))
    assert torch.equal(resumed.weight, model.weight)
    drop = {"elapsed_s"}
    assert [{k: v for k, v in r.items() if k not in drop} for r in resumed_history] == [
        {k: v for k, v in r.items() if k not in drop} for r in history
    ]


def test_no_checkpoint_dir_trains_without_checkpoints(tmp_path, monkeypatch):
    """checkpoint_dir None: it trains straight through, writing nothing, the same both times."""
    monkeypatch.chdir(tmp_path)
    params = overridden(BLOCKS["evaluator"].training, epochs=2, batch_size=16, checkpoint_dir=None)
    model, history = _train(params)
    assert [row["epoch"] for row in history] == [1, 2]
    assert list(tmp_path.rglob("*")) == []
    again, _ = _train(params)
    assert torch.equal(again.weight, model.weight)


def test_fingerprint_ignores_how_long_and_where_but_not_what():
    block = autoencoder_block(3, "a")
    same = overridden(block, epochs=9, checkpoint_dir="b", resume=False)
    assert fingerprint(block, 40) == fingerprint(same, 40)
    assert fingerprint(block, 40) != fingerprint(overridden(block, lr=0.5), 40)
    assert fingerprint(block, 40) != fingerprint(block, 41)  # another training set
    # as the hand-kept ignore list hashed it before run control was declared in the block
    ignored = {"epochs", "checkpoint_every_epochs", "checkpoint_dir", "resume", "device"}
    values = {k: v for k, v in block.model_dump(mode="json").items() if k not in ignored}
    values["n_train"] = 40
    expected = hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]
    assert fingerprint(block, 40) == expected
