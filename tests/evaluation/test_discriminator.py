"""The discriminator as a judge on held-out data, with known answers."""

import pytest
import torch

from fashiongan.evaluation.discriminator import (
    discriminator_metrics,
    loss_kind,
    score_discriminator,
)
from fashiongan.models.mlp_gan import MLPDiscriminator
from tests.model_configs import mlp_config


def _constant_real_verdict() -> MLPDiscriminator:
    discriminator = MLPDiscriminator(mlp_config(discriminator_hidden=(4,)))
    with torch.no_grad():
        for parameter in discriminator.parameters():
            parameter.zero_()
        discriminator.net[-1].bias.fill_(1.0)  # logit 1 for everything: "real"
    return discriminator


def test_discriminator_metrics_of_a_constant_real_verdict():
    discriminator = _constant_real_verdict()
    real, fake = torch.zeros(6, 1, 28, 28), torch.ones(4, 1, 28, 28)
    out = discriminator_metrics(discriminator, real, fake, kind="bce")
    assert out["accuracy"] == 0.6 and out["recall"] == 1.0 and out["precision"] == 0.6
    assert out["tp"] == 6 and out["fp"] == 4
    assert out["g_loss"] == pytest.approx(float(torch.nn.functional.softplus(torch.tensor(-1.0))))
    hinge = discriminator_metrics(discriminator, real, fake, kind="hinge", batch_size=3)
    assert hinge["d_loss"] == pytest.approx(0.0 + 2.0) and hinge["g_loss"] == -1.0


def test_score_discriminator_scores_samples_floor_and_noise():
    discriminator = _constant_real_verdict()
    real = torch.zeros(6, 1, 28, 28)
    references = {"floor": torch.ones(2, 1, 28, 28), "noise": torch.ones(8, 1, 28, 28)}
    out = score_discriminator(
        discriminator, "bce", {"images": torch.ones(4, 1, 28, 28)}, real, references, None, 5,
        "cpu",
    )  # fmt: skip
    assert out["loss"] == "bce" and out["accuracy"] == 0.6
    assert out["floor"]["accuracy"] == 0.75 and out["noise"]["accuracy"] == pytest.approx(6 / 14)


def test_conditional_discriminator_needs_caption_features(tiny):
    discriminator = tiny["modules"]["conditional"]["discriminator"]
    real = tiny["model_input"]["test_images"][:4]
    with pytest.raises(ValueError, match="caption features"):
        discriminator_metrics(discriminator, real, real, kind="hinge")
    out = score_discriminator(
        discriminator, "hinge", {"images": real}, real, {"floor": real, "noise": real}, None, 4,
        "cpu",
    )  # fmt: skip
    assert out == {"note": "conditional discriminator but unconditional samples: skipped"}


def test_loss_kind_given_or_the_training_default(tiny):
    mlp = tiny["modules"]["baseline"]["discriminator"]
    conditional = tiny["modules"]["conditional"]["discriminator"]
    assert loss_kind("baseline", mlp, {}) == "bce"
    assert loss_kind("conditional", conditional, {}) == "hinge"
    assert loss_kind("baseline", mlp, {"baseline": "wgan-gp"}) == "wgan-gp"
