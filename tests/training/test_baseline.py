import hashlib
import json

import pytest
import torch

from fashiongan.config import load_parameters, overridden
from fashiongan.training.baseline import fingerprint, train_mlp_gan
from fashiongan.training.checkpoint import CheckpointError
from fashiongan.training.runtime import NonFiniteLossError
from tests.conftest import REPO_ROOT
from tests.model_configs import mlp_config

#: conf/base's block, shrunk: 12 iterations of a small MLP.
PARAMS = overridden(
    load_parameters(REPO_ROOT / "conf")["baseline"].training,
    seed=3, device="cpu", num_threads=1, iterations=12, batch_size=8, d_lr=2e-4, g_lr=1e-4,
    d_betas=(0.5, 0.999), g_betas=(0.5, 0.999), log_every=2, sample_every=0, checkpoint_every=4,
    checkpoint_dir=None, model__noise_dim=16, model__generator_hidden=(16, 32, 32),
    model__discriminator_hidden=(32, 16),
)  # fmt: skip


def with_(**changes):
    """PARAMS with ``changes``, validated again."""
    return overridden(PARAMS, **changes)


class Killed(BaseException):
    """Stands in for SIGKILL: the process stops between two steps, with no final log or save."""


def train_until_killed(images, params, kill_at_step, monkeypatch):
    def check_or_die(step, **losses):
        if step == kill_at_step:
            raise Killed

    monkeypatch.setattr("fashiongan.training.loop.check_finite", check_or_die)
    with pytest.raises(Killed):
        train_mlp_gan(images, params)
    monkeypatch.undo()


@pytest.fixture
def images():
    return torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1


def test_one_step_changes_both_networks(images):
    params = with_(iterations=1)
    torch.manual_seed(params.seed)
    from fashiongan.models.mlp_gan import MLPDiscriminator, MLPGANConfig, MLPGenerator

    config = MLPGANConfig(**params.model.model_dump())
    initial_g, initial_d = MLPGenerator(config), MLPDiscriminator(config)  # same seed → same init
    generator, discriminator, history = train_mlp_gan(images, params)
    assert not torch.equal(generator.net[0].weight, initial_g.net[0].weight)
    assert not torch.equal(discriminator.net[1].weight, initial_d.net[1].weight)
    assert history[-1]["step"] == 1


def test_deterministic_for_a_seed(images):
    g1, _, h1 = train_mlp_gan(images, PARAMS)
    g2, _, h2 = train_mlp_gan(images, PARAMS)
    assert h1 == h2
    assert all(
        torch.equal(a, b)
        for a, b in zip(g1.state_dict().values(), g2.state_dict().values(), strict=True)
    )


def test_resume_matches_uninterrupted_run(images, tmp_path):
    uninterrupted, _, history = train_mlp_gan(images, PARAMS)
    checkpoints = tmp_path / "ckpt"
    train_mlp_gan(images, with_(iterations=8, checkpoint_dir=str(checkpoints)))  # "killed" at 8
    resumed, _, resumed_history = train_mlp_gan(images, with_(checkpoint_dir=str(checkpoints)))
    assert resumed_history == history
    for a, b in zip(
        uninterrupted.state_dict().values(), resumed.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)


def test_corrupt_latest_checkpoint_falls_back_to_previous(images, tmp_path, caplog):
    checkpoints = tmp_path / "ckpt"
    train_mlp_gan(images, with_(iterations=8, checkpoint_dir=str(checkpoints)))
    latest = sorted(checkpoints.glob("*/ckpt-*.safetensors"))[-1]
    latest.write_bytes(latest.read_bytes()[:50])
    uninterrupted, _, history = train_mlp_gan(images, PARAMS)
    resumed, _, resumed_history = train_mlp_gan(images, with_(checkpoint_dir=str(checkpoints)))
    assert latest.name in caplog.text and "unreadable" in caplog.text
    assert resumed_history == history


def test_changed_parameters_start_afresh(images, tmp_path):
    checkpoints = tmp_path / "ckpt"
    train_mlp_gan(images, with_(iterations=4, checkpoint_dir=str(checkpoints)))
    _, _, fresh = train_mlp_gan(images, with_(d_lr=1e-3, iterations=4))
    _, _, history = train_mlp_gan(
        images, with_(d_lr=1e-3, iterations=4, checkpoint_dir=str(checkpoints))
    )
    assert history == fresh
    assert len(list(checkpoints.iterdir())) == 2, "one checkpoint folder per parameter set"


def test_checkpoint_with_foreign_fingerprint_is_refused(images, tmp_path):
    checkpoints = tmp_path / "ckpt"
    train_mlp_gan(images, with_(iterations=4, checkpoint_dir=str(checkpoints)))
    (folder,) = checkpoints.iterdir()
    folder.rename(checkpoints / "0123456789abcdef")  # as if copied under another run's name
    state_dir = checkpoints / "0123456789abcdef"
    from fashiongan.models.mlp_gan import MLPGenerator
    from fashiongan.training.checkpoint import TrainingState, load_latest

    state = TrainingState({"G": MLPGenerator(mlp_config())}, {}, torch.Generator())
    with pytest.raises(CheckpointError, match="different parameters"):
        load_latest(state_dir, state, "0123456789abcdef")


def test_nan_loss_stops_with_clear_message_and_keeps_checkpoint(images, tmp_path):
    checkpoints = tmp_path / "ckpt"
    train_mlp_gan(images, with_(iterations=4, checkpoint_dir=str(checkpoints)))
    before = sorted(p.name for p in checkpoints.rglob("*"))
    poisoned = images.clone()
    poisoned[:] = float("nan")
    with pytest.raises(NonFiniteLossError, match="d_loss became nan at step 4"):
        train_mlp_gan(poisoned, with_(checkpoint_dir=str(checkpoints)))
    assert sorted(p.name for p in checkpoints.rglob("*")) == before


def test_resume_mid_log_window_is_exact(images, tmp_path, monkeypatch):
    """Checkpoints carry the open metric window, so cadences need not line up."""
    params = with_(log_every=3, checkpoint_every=4)
    _, _, history = train_mlp_gan(images, params)
    checkpoints = tmp_path / "ckpt"
    train_until_killed(images, overridden(params, checkpoint_dir=str(checkpoints)), 10, monkeypatch)
    _, _, resumed_history = train_mlp_gan(
        images, overridden(params, checkpoint_dir=str(checkpoints))
    )
    assert [row["step"] for row in history] == [3, 6, 9, 12]
    assert resumed_history == history


def test_finishing_at_a_checkpoint_logs_its_open_window(images, tmp_path, monkeypatch):
    """A longer run killed after the step-12 checkpoint, finished with iterations=12, logs as a 12-step run."""
    params = with_(log_every=5, checkpoint_every=12)
    _, _, twelve = train_mlp_gan(images, overridden(params, iterations=12))
    checkpoints = tmp_path / "ckpt"
    train_until_killed(
        images, overridden(params, iterations=20, checkpoint_dir=str(checkpoints)), 13, monkeypatch
    )
    _, _, finished = train_mlp_gan(
        images, overridden(params, iterations=12, checkpoint_dir=str(checkpoints))
    )
    assert [row["step"] for row in twelve] == [5, 10, 12]
    assert finished == twelve


def test_checkpoints_of_the_default_block_keep_their_fingerprint():
    """The hash the trainer computed from a hand-kept ignore list, before run control was
    declared in the block: the default run's checkpoints must still resume."""
    block = load_parameters(REPO_ROOT / "conf")["baseline"].training
    ignored = {
        "iterations", "log_every", "sample_every", "checkpoint_every", "checkpoint_dir",
        "resume", "device", "mlflow_prefix", "num_threads",
    }  # fmt: skip
    values = {k: v for k, v in block.model_dump(mode="json").items() if k not in ignored}
    expected = hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]
    assert fingerprint(block) == expected
    assert fingerprint(block) == fingerprint(overridden(block, iterations=5, log_every=1))
    assert fingerprint(block) != fingerprint(overridden(block, g_lr=0.5))
