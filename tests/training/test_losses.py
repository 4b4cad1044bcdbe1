import pytest
import torch

from fashiongan.training.losses import (
    LOSSES,
    discriminator_loss,
    generator_loss,
    gradient_penalty,
    triplet_loss,
)


@pytest.mark.parametrize("kind", LOSSES)
def test_each_loss_gives_finite_gradients(kind):
    scores = torch.randn(3, 8, requires_grad=True)
    real, fake, mismatch = scores
    loss = discriminator_loss(kind, real, fake, mismatch, 0.9) + generator_loss(kind, fake)
    loss.backward()
    assert (
        torch.isfinite(loss) and torch.isfinite(scores.grad).all() and scores.grad.abs().sum() > 0
    )


def test_bce_one_sided_smoothing_targets_real_label():
    real = torch.full((4,), 2.0)
    smooth = discriminator_loss("bce", real, torch.zeros(4), torch.zeros(4), real_label=0.9)
    hard = discriminator_loss("bce", real, torch.zeros(4), torch.zeros(4), real_label=1.0)
    # With a confident real score, smoothing makes the loss larger (it penalises over-confidence).
    assert smooth > hard


def test_hinge_is_zero_when_margins_are_met():
    assert (
        discriminator_loss(
            "hinge", torch.full((4,), 1.5), torch.full((4,), -2.0), torch.full((4,), -1.0), 0.9
        )
        == 0
    )


def test_unknown_loss_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown loss 'lsgan'"):
        discriminator_loss("lsgan", torch.zeros(1), torch.zeros(1), torch.zeros(1), 0.9)


def test_gradient_penalty_by_hand():
    """A linear critic f(x) = w·x has gradient w everywhere: GP = (‖w‖ − 1)²."""
    w = torch.tensor([3.0, 4.0])  # ‖w‖ = 5 → penalty 16
    critic = lambda x: x @ w  # noqa: E731
    real, fake = torch.randn(6, 2), torch.randn(6, 2)
    penalty = gradient_penalty(critic, real, fake, torch.rand(6))
    assert penalty.item() == pytest.approx(16.0)
    unit = torch.tensor([0.6, 0.8])
    assert gradient_penalty(lambda x: x @ unit, real, fake, torch.rand(6)).item() == pytest.approx(
        0.0, abs=1e-10
    )


def test_triplet_loss_by_hand():
    """Plain L2 distances, as torch's triplet_margin_loss with p=2: max(0, d(a,p) − d(a,n) + m).

    d(a,p) = 0.5 and d(a,n) = 1.0 (squared: 0.25 and 1.0), so the two readings part ways.
    """
    anchor = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    positive = torch.tensor([[0.3, 0.4], [0.3, 0.4]])
    negative = torch.tensor([[0.6, 0.8], [0.6, 0.8]])
    # margin 0.6: plain 0.5 − 1.0 + 0.6 = 0.1 (squared would give max(0, −0.15) = 0)
    assert triplet_loss(anchor, positive, negative, margin=0.6).item() == pytest.approx(
        0.1, abs=1e-5
    )
    # margin 1.0: plain 0.5 (squared would give 0.25)
    assert triplet_loss(anchor, positive, negative, margin=1.0).item() == pytest.approx(
        0.5, abs=1e-5
    )
    far_negative = torch.tensor([[3.0, 4.0], [3.0, 4.0]])  # d = 5: the margin is met, no loss
    assert triplet_loss(anchor, positive, far_negative, margin=1.0).item() == 0


def test_auxiliary_loss_by_hand_skips_unasked_values():
    from fashiongan.training.losses import auxiliary_loss

    class_logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    tone_logits = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 3.0]])
    targets = torch.tensor([[0, -1], [0, 2]])  # item 0 asks no tone
    expected = (
        -0.5 * (torch.log_softmax(class_logits[0], 0)[0] + torch.log_softmax(class_logits[1], 0)[0])
        - torch.log_softmax(tone_logits[1], 0)[2]
    )
    assert torch.allclose(auxiliary_loss([class_logits, tone_logits], targets), expected)
    nothing_asked = auxiliary_loss([class_logits, tone_logits], torch.full((2, 2), -1))
    assert nothing_asked.item() == 0.0  # finite, not NaN
