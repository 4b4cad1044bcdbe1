import pytest
import torch

from fashiongan.datasets.safetensors import load_module, save_module
from fashiongan.models.autoencoders import (
    ConvAutoencoder,
    ConvVAE,
    VAEDecoder,
    corrupt,
)
from tests.model_configs import autoencoder_config, vae_config

SMALL = {"channels_hidden": (4, 8)}


def _images(n: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_autoencoder_shapes_and_range():
    model = ConvAutoencoder(autoencoder_config(latent_dim=5, **SMALL))
    images = _images(3)
    assert model.encode(images).shape == (3, 5)
    out = model(images)
    assert out.shape == (3, 1, 28, 28)
    assert out.min() >= -1 and out.max() <= 1


def test_vae_shapes_sampling_and_elbo_terms():
    vae = ConvVAE(vae_config(latent_dim=6, **SMALL)).eval()
    images = _images(4)
    mu, logvar = vae.encode(images)
    assert mu.shape == logvar.shape == (4, 6)
    assert vae(images).shape == (4, 1, 28, 28)
    samples = vae.sample(5, torch.Generator().manual_seed(1))
    assert samples.shape == (5, 1, 28, 28) and samples.abs().max() <= 1
    terms = vae.elbo_terms(images, beta=0.5, generator=torch.Generator().manual_seed(0))
    assert terms.kl >= 0 and terms.reconstruction > 0
    assert torch.isclose(terms.loss, terms.reconstruction + 0.5 * terms.kl)
    assert torch.isclose(terms.elbo, -(terms.reconstruction + terms.kl))


def test_vae_decoder_is_a_generator_loadable_like_a_gan(tmp_path):
    decoder = ConvVAE(vae_config(latent_dim=7, **SMALL)).decoder
    path = tmp_path / "generator.safetensors"
    save_module(decoder, path)
    loaded = load_module(path)
    assert isinstance(loaded, VAEDecoder)
    assert loaded.config.latent_dim == loaded.config.noise_dim == 7
    z = torch.randn(2, 7)
    assert torch.allclose(loaded(z), decoder.eval()(z))
    assert loaded(z).abs().max() <= 1


@pytest.mark.parametrize("kind", ["vanilla", "vae"])
def test_one_step_lowers_the_loss_on_a_fixed_batch(kind):
    torch.manual_seed(0)
    images = _images(16)
    if kind == "vanilla":
        model = ConvAutoencoder(autoencoder_config(latent_dim=8, **SMALL))

        def loss_fn():
            return torch.nn.functional.mse_loss(model(images), images)
    else:
        model = ConvVAE(vae_config(latent_dim=4, **SMALL))

        def loss_fn():
            return model.elbo_terms(images, generator=torch.Generator().manual_seed(3)).loss

    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = loss_fn()
    optimizer.zero_grad()
    before.backward()
    optimizer.step()
    assert loss_fn().item() < before.item()


def test_corrupt_gaussian_and_masking_levels():
    images = torch.zeros(64, 1, 28, 28)  # mid-grey: no clipping at 0.1 std
    generator = torch.Generator().manual_seed(0)
    noisy = corrupt(images, "gaussian", 0.1, generator)
    assert noisy.shape == images.shape
    assert abs(noisy.std().item() - 0.2) < 0.01  # 0.1 on [0, 1] = 0.2 on [-1, 1]
    masked = corrupt(images, "masking", 0.25, generator)
    assert abs((masked == -1).float().mean().item() - 0.25) < 0.01
    assert torch.equal(corrupt(images, "masking", 0.0, generator), images)


def test_bad_inputs_have_clear_errors():
    with pytest.raises(ValueError, match="Unknown noise kind 'salt'"):
        corrupt(_images(1), "salt", 0.1)
    with pytest.raises(ValueError, match=r"masked fraction\) must be in \[0, 1\]"):
        corrupt(_images(1), "masking", 1.5)
    with pytest.raises(ValueError, match="not divisible by 2\\*\\*3"):
        autoencoder_config(channels_hidden=(4, 8, 16))
