import copy

import pytest
import torch

from fashiongan.training.conditional import (
    _same_class_sampler,
    same_class_contradictions,
    train_conditional_gan,
)

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
        ({"attribute_mismatch": -0.1}, "attribute_mismatch"),
        ({"aux_weight": -1}, "aux_weight must be"),
        ({"aux_weight": 1.0}, "need \\['item_attributes', 'text_attributes'\\]"),
        ({"attribute_mismatch": 0.5}, "need \\['item_attributes', 'text_attributes'\\]"),
    ],
)
def test_bad_config_is_a_clear_error(data, override, message):
    with pytest.raises(ValueError, match=message):
        train_conditional_gan(*data, dict(PARAMS, **override))


def test_params_are_not_mutated(data):
    params = copy.deepcopy(PARAMS)
    train_conditional_gan(*data, dict(params, epochs=1))
    assert params == PARAMS


def test_same_class_contradictions_by_hand():
    # Items 0-3 are class 0, items 4-5 class 1. Attributes (tone, fit, pattern).
    labels = torch.tensor([0, 0, 0, 0, 1, 1])
    items = torch.tensor([[0, 0, 0], [2, 0, 0], [0, 1, 0], [1, 1, 1], [0, 0, 0], [0, 0, 0]])
    caption_index = torch.arange(6)  # item i has text i
    stated = torch.tensor(
        [[0, -1, -1], [2, -1, -1], [-1, -1, -1], [-1, 1, -1], [-1, -1, -1], [0, -1, -1]]
    )  # text 0 "dark …", 1 "light …", 2 "a coat", 3 "regular …", 4 "a bag", 5 "dark bag"
    table, counts = _same_class_sampler(labels)
    idx = torch.tensor([0, 0, 0, 0, 4, 4])
    uniform = torch.tensor([0.1, 0.3, 0.6, 0.9, 0.1, 0.9])  # class 0: items 0..3; class 1: 4, 5
    rows, contradicts = same_class_contradictions(
        idx, uniform, labels, table, counts, caption_index, stated, items
    )
    assert rows.tolist() == [0, 1, 2, 3, 4, 5]
    # item 0 is dark, slim, plain: "dark" agrees, "light" and "regular" contradict, "a coat" not
    assert contradicts.tolist() == [False, True, False, True, False, False]


@pytest.fixture
def attributed(data):
    """The fixture plus what the caption grammar knows: stated (-1 = not) and true attributes."""
    images, labels, conditioning = data
    g = torch.Generator().manual_seed(1)
    return (
        images,
        labels,
        {
            **conditioning,
            "text_attributes": torch.randint(-1, 3, (U, 3), generator=g),
            "item_attributes": torch.randint(0, 3, (N, 3), generator=g),
        },
    )


def test_attribute_mismatch_trains_and_resumes(attributed, tmp_path):
    images, labels, conditioning = attributed
    params = dict(PARAMS, attribute_mismatch=0.5, epochs=2, log_every=4)  # 4 steps an epoch
    _, discriminator, _, history = train_conditional_gan(images, labels, conditioning, params)
    _, d_off, _, history_off = train_conditional_gan(
        images, labels, conditioning, dict(params, attribute_mismatch=0.0)
    )
    assert history != history_off  # the negatives changed what D saw
    checkpoints = str(tmp_path / "ckpt")
    train_conditional_gan(
        images, labels, conditioning, dict(params, checkpoint_dir=checkpoints, epochs=1)
    )
    _, resumed, _, resumed_history = train_conditional_gan(
        images, labels, conditioning, dict(params, checkpoint_dir=checkpoints)
    )
    assert resumed_history == history
    for a, b in zip(
        discriminator.state_dict().values(), resumed.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)


def test_auxiliary_classifier_term(attributed, tmp_path):
    from fashiongan.datasets import TorchModelDataset

    images, labels, conditioning = attributed
    params = dict(PARAMS, aux_weight=1.0, epochs=2)
    generator, discriminator, _, history = train_conditional_gan(
        images, labels, conditioning, params
    )
    assert discriminator.config.aux_classes == (4, 3, 3, 3)  # 4 classes in the fixture
    assert {"d_aux_loss", "g_aux_loss"} <= set(history[-1])
    # D learns to name the real items' class: its aux loss falls below chance (ln 4 + 3 ln 3)
    assert history[-1]["d_aux_loss"] < history[0]["d_aux_loss"]
    score, heads = discriminator(images[:5], conditioning["text_embeddings"][:5], aux=True)
    assert score.shape == (5,) and [h.shape for h in heads] == [(5, 4), (5, 3), (5, 3), (5, 3)]
    dataset = TorchModelDataset(filepath=str(tmp_path / "d.safetensors"))
    dataset.save(discriminator)
    assert dataset.load().config.aux_classes == (4, 3, 3, 3)
    _, plain, _, plain_history = train_conditional_gan(
        images, labels, conditioning, dict(params, aux_weight=0.0)
    )
    assert plain.aux is None and "d_aux_loss" not in plain_history[-1]
    with pytest.raises(ValueError, match="no auxiliary heads"):
        plain(images[:2], conditioning["text_embeddings"][:2], aux=True)
