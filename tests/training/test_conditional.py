import copy

import pytest
import torch

from fashiongan.training.conditional import train_conditional_gan

N, U, D = 64, 10, 12
PARAMS = {
    "seed": 5,
    "device": "cpu",
    "epochs": 3,
    "batch_size": 16,
    "loss": "hinge",
    "n_critic": 1,
    "real_label": 0.9,
    "gp_lambda": 10.0,
    "image_drop": 0.5,
    "g_lr": 1e-4,
    "d_lr": 4e-4,
    "e_lr": 1e-3,
    "g_betas": [0.0, 0.9],
    "d_betas": [0.0, 0.9],
    "triplet_margin": 0.2,
    "triplet_weight": 1.0,
    "diversity_weight": 1.0,
    "log_every": 3,
    "sample_columns": 2,
    "checkpoint_dir": None,
    "model": {
        "g_channels": 4,
        "d_channels": 4,
        "text_channels": 2,
        "noise_channels": 2,
        "embed_dim": 8,
        "noise_dim": 4,
    },
    "embedding": {"width": 4, "dim": 8},
}


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(N, 1, 28, 28, generator=g) * 2 - 1
    labels = torch.arange(N) % 4
    conditioning = {
        "text_embeddings": torch.randn(U, D, generator=g),
        "caption_index": torch.randint(0, U, (N,), generator=g),
        "reference_index": torch.randint(0, N, (N,), generator=g),
        "modification_index": torch.randint(0, U, (N,), generator=g),
        "sample_text": torch.randn(2, D, generator=g),
    }
    return images, labels, conditioning


@pytest.mark.parametrize("loss", ["bce", "wgan-gp", "hinge"])
def test_each_loss_trains_and_changes_weights(data, loss):
    params = dict(PARAMS, loss=loss, epochs=1, n_critic=2 if loss == "wgan-gp" else 1)
    torch.manual_seed(params["seed"])
    generator, discriminator, embedder, history = train_conditional_gan(*data, params)
    assert len(history) >= 1 and all(
        torch.isfinite(torch.tensor(list(r.values()))).all() for r in history
    )
    assert generator.config.text_dim == D


def test_checkpoint_resume_reproduces_uninterrupted_run(data, tmp_path, monkeypatch):
    g_full, _, e_full, history = train_conditional_gan(*data, PARAMS)

    class Killed(BaseException):
        pass

    def die_at_step_9(step, **losses):  # mid-epoch 3 (4 steps an epoch)
        if step == 9:
            raise Killed

    checkpoints = str(tmp_path / "ckpt")
    monkeypatch.setattr("fashiongan.training.loop.check_finite", die_at_step_9)
    with pytest.raises(Killed):
        train_conditional_gan(*data, dict(PARAMS, checkpoint_dir=checkpoints))
    monkeypatch.undo()
    assert (
        sorted(p.name for p in (tmp_path / "ckpt").rglob("ckpt-*"))[-1]
        == "ckpt-000000008.safetensors"
    )
    g_resumed, _, e_resumed, resumed_history = train_conditional_gan(
        *data, dict(PARAMS, checkpoint_dir=checkpoints)
    )
    assert resumed_history == history
    for full, resumed in ((g_full, g_resumed), (e_full, e_resumed)):
        for a, b in zip(full.state_dict().values(), resumed.state_dict().values(), strict=True):
            assert torch.equal(a, b)


@pytest.mark.parametrize(
    "override,message",
    [
        ({"loss": "lsgan"}, "choose one of"),
        ({"epochs": 0}, "epochs must be"),
        ({"image_drop": 2}, "image_drop"),
    ],
)
def test_bad_config_is_a_clear_error(data, override, message):
    with pytest.raises(ValueError, match=message):
        train_conditional_gan(*data, dict(PARAMS, **override))


def test_params_are_not_mutated(data):
    params = copy.deepcopy(PARAMS)
    train_conditional_gan(*data, dict(params, epochs=1))
    assert params == PARAMS
