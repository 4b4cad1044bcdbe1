import pytest
import torch

from fashiongan.models.conditional_gan import (
    ConditionalDiscriminator,
    ConditionalGenerator,
    ImageEmbedder,
    group_std,
)
from tests.model_configs import conditional_config, embedding_config

SMALL = dict(
    g_channels=8,
    d_channels=8,
    text_channels=4,
    noise_channels=4,
    embed_dim=16,
    text_dim=12,
    noise_dim=6,
    text_code_dim=0,
    minibatch_std=False,
)


@pytest.mark.parametrize("size,channels,stages", [(28, 1, 2), (64, 3, 3)])
def test_shapes_text_only_and_image_plus_text(size, channels, stages):
    config = conditional_config(image_size=size, channels=channels, stages=stages, **SMALL)
    generator, discriminator = ConditionalGenerator(config), ConditionalDiscriminator(config)
    z, text = torch.randn(3, 6), torch.randn(3, 12)
    reference = torch.rand(3, channels, size, size) * 2 - 1
    for images in (
        generator(z, text),
        generator(z, text, reference),
        generator(z, text, reference, torch.tensor([True, False, True])),
    ):
        assert images.shape == (3, channels, size, size)
        assert images.abs().max() <= 1
    assert discriminator(images, text).shape == (3,)


def test_no_image_flag_uses_the_learned_placeholder():
    torch.manual_seed(0)
    generator = ConditionalGenerator(conditional_config(**SMALL)).eval()
    z, text = torch.randn(2, 6), torch.randn(2, 12)
    reference = torch.rand(2, 1, 28, 28)
    text_only = generator(z, text)
    masked = generator(z, text, reference, torch.tensor([False, True]))
    assert torch.allclose(masked[0], text_only[0], atol=1e-6)
    assert not torch.allclose(masked[1], text_only[1])


def test_changing_the_caption_changes_the_output():
    torch.manual_seed(0)
    generator = ConditionalGenerator(conditional_config(**SMALL)).eval()
    z = torch.randn(1, 6)
    assert not torch.allclose(generator(z, torch.randn(1, 12)), generator(z, torch.randn(1, 12)))


def test_discriminator_depends_on_the_caption():
    torch.manual_seed(0)
    discriminator = ConditionalDiscriminator(conditional_config(**SMALL)).eval()
    image = torch.rand(1, 1, 28, 28)
    assert discriminator(image, torch.randn(1, 12)) != discriminator(image, torch.randn(1, 12))


@pytest.mark.parametrize("minibatch_std", [False, True])
def test_k_captions_per_image_score_as_k_separate_passes(minibatch_std):
    """The matching-aware step scores each real item with two captions in one image pass."""
    torch.manual_seed(0)
    config = conditional_config(**SMALL | {"minibatch_std": minibatch_std})
    discriminator = ConditionalDiscriminator(config).eval()
    images, own, wrong = torch.rand(8, 1, 28, 28), torch.randn(8, 12), torch.randn(8, 12)
    scores = discriminator(images, torch.stack([own, wrong], 1))  # (8, 2)
    assert scores.shape == (8, 2)
    torch.testing.assert_close(scores[:, 0], discriminator(images, own))
    torch.testing.assert_close(scores[:, 1], discriminator(images, wrong))


def test_image_size_must_fit_stages():
    with pytest.raises(ValueError, match="divisible"):
        conditional_config(image_size=30, stages=2)


def test_embedder_outputs_unit_vectors():
    embedder = ImageEmbedder(embedding_config(width=4, dim=8))
    vectors = embedder(torch.rand(5, 1, 28, 28))
    assert vectors.shape == (5, 8)
    assert torch.allclose(vectors.norm(dim=1), torch.ones(5), atol=1e-5)


def test_group_std_measures_each_group_of_four():
    copies = torch.randn(1, 3, 5, 5).repeat(4, 1, 1, 1)
    varied = torch.randn(4, 3, 5, 5)
    spread = group_std(torch.cat([copies, varied]))  # (8, 1, 5, 5): two groups
    assert spread.shape == (8, 1, 5, 5)
    assert spread[:4].max() < 1e-3 < spread[4:].min()  # copies have no spread
    assert torch.equal(spread[4], spread[7])  # one value for the whole group
    assert group_std(torch.randn(6, 2, 3, 3)).shape == (6, 1, 3, 3)  # 6: groups of 3


def test_group_std_reads_channels_last_features_as_contiguous_ones():
    x = torch.randn(8, 3, 5, 5)
    torch.testing.assert_close(group_std(x.to(memory_format=torch.channels_last)), group_std(x))


def test_minibatch_std_lets_d_see_the_rest_of_the_group():
    torch.manual_seed(0)
    images, text = torch.rand(4, 1, 28, 28) * 2 - 1, torch.randn(4, 12)
    changed = images.clone()
    changed[3] = -changed[3]  # another image of image 0's group
    for on in (False, True):
        d = ConditionalDiscriminator(conditional_config(**SMALL | {"minibatch_std": on})).eval()
        with torch.no_grad():
            moved = (d(images, text)[0] - d(changed, text)[0]).abs()
        assert (moved > 1e-6) == on


def test_text_code_spreads_one_caption_over_the_noise_it_is_drawn_with():
    """Conditioning augmentation: the text code is mean + spread × the noise's first entries, so
    a seeded noise still fixes the image and the code is the only new path (off: no weights)."""
    config = conditional_config(**SMALL | {"text_code_dim": 4})
    generator = ConditionalGenerator(config).eval()
    z, text = torch.randn(3, 6), torch.randn(3, 12)
    mean, log_var = generator.text_distribution(text)
    assert mean.shape == log_var.shape == (3, 4)
    assert torch.equal(generator(z, text), generator(z, text))
    code_only = z.clone()
    code_only[:, :4] += 1.0  # moves the code (and the noise path)
    assert not torch.allclose(generator(z, text), generator(code_only, text))
    with torch.no_grad():  # no spread: the code's noise only reaches the noise path
        generator.text_code.weight[4:].zero_()
        generator.text_code.bias[4:].fill_(-80.0)
        generator.noise_proj[0].weight[:, :4].zero_()
    assert torch.allclose(generator(z, text), generator(code_only, text))
    plain = ConditionalGenerator(conditional_config(**SMALL))
    assert plain.text_code is None and not any("text_code" in k for k in plain.state_dict())
    with pytest.raises(ValueError, match="at most noise_dim"):
        conditional_config(**SMALL | {"text_code_dim": 7})
