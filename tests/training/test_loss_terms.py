import torch
import torch.nn.functional as F
from torch.distributions import Normal, kl_divergence

from fashiongan.training.loss_terms import AuxiliaryHeads, Pass, TextCodePrior, Texts
from fashiongan.training.sampling import Batch

SIZES = (3, 2)  # a class head and one attribute head, to check the terms by hand


def aux_heads() -> AuxiliaryHeads:
    labels = torch.tensor([0, 1, 2, 0])
    caption_index = torch.tensor([0, 1, 1, 0])
    stated = torch.tensor([[1], [-1]])  # caption 0 asks for value 1, caption 1 states nothing
    item = torch.tensor([[0], [1], [0], [1]])  # each item's true value
    return AuxiliaryHeads(2.0, labels, caption_index, stated, item)


def one_pass(n_heads: int, rows: int) -> Pass:
    """A step on items 0 and 1: item 0 asked by its caption, item 1 by a composed query."""
    g = torch.Generator().manual_seed(0)
    image = torch.zeros(2, 1, 2, 2)
    batch = Batch(
        idx=torch.tensor([0, 1]), real=image, reference=image,
        has_image=torch.tensor([False, True]), target_rows=torch.tensor([0, 1]),
        wrong_rows=torch.tensor([1, 0]), query_rows=torch.tensor([0, 1]), positive=image,
        negative=image,
    )  # fmt: skip
    heads = [torch.randn(rows, SIZES[i % 2], generator=g) for i in range(n_heads)]
    return Pass(batch, Texts(*[torch.zeros(2, 1)] * 3), torch.zeros(2, 1), image, heads)


#: What items 0 and 1 were asked for, per head: their classes, then the attribute (item 0's
#: caption states 1; item 1's composed query fixes its own value, 1).
ASKED = [torch.tensor([0, 1]), torch.tensor([1, 1])]


def test_the_heads_name_real_items_and_fakes_as_asked():
    step = one_pass(2, rows=4)  # D's pass: [real | fake]
    loss, metrics = aux_heads().on_real(step)
    truth = [torch.tensor([0, 1]), torch.tensor([0, 1])]  # the real items' class and value
    real = sum(F.cross_entropy(step.heads[i][:2], truth[i]) for i in range(2))
    assert torch.allclose(loss, 2.0 * real) and set(metrics) == {"d_aux_loss"}
    fake_step = one_pass(2, rows=2)  # G's pass: the fakes
    loss, _ = aux_heads().on_fake(fake_step)
    named = sum(F.cross_entropy(fake_step.heads[i], ASKED[i]) for i in range(2))
    assert torch.allclose(loss, 2.0 * named)


class _Coded(torch.nn.Module):
    """A generator's text code alone: mean = the text, log variance = twice the text."""

    def text_distribution(self, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return text, 2 * text


def test_the_text_code_prior_is_stackgans_kl_per_element():
    step = one_pass(0, rows=2)
    step.texts.query = torch.tensor([[0.5, -1.0], [0.0, 2.0]])
    loss, metrics = TextCodePrior(_Coded(), weight=3.0)(step)
    mean = step.texts.query
    by_hand = kl_divergence(Normal(mean, mean.exp()), Normal(0.0, 1.0)).mean()
    assert torch.allclose(metrics["g_text_kl_loss"], by_hand)
    assert torch.allclose(loss, 3.0 * by_hand)
    step.texts.query = torch.zeros(2, 2)  # the prior itself: nothing to pay
    assert TextCodePrior(_Coded(), weight=3.0)(step)[0].item() == 0.0
