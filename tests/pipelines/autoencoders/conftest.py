"""Tiny autoencoder settings for end-to-end runs on the conftest's drawn data."""

import pytest
import yaml

_TINY_MODEL = {"latent_dim": 4, "channels_hidden": [4, 8], "image_size": 28, "channels": 1}
TINY_AUTOENCODERS = {
    "autoencoders": {
        "vanilla": {"epochs": 2, "batch_size": 32, "model": _TINY_MODEL},
        "denoising": {"epochs": 2, "batch_size": 32, "model": _TINY_MODEL},
        "vae": {"epochs": 2, "batch_size": 32, "model": _TINY_MODEL},
        "evaluation": {"batch_size": 16},
        "figures": {"n_samples": 8, "ncols": 4, "projection_points": 40},
    }
}


@pytest.fixture
def tiny_autoencoders(kedro_project):
    """The temp Kedro project with autoencoder training shrunk to seconds."""
    path = kedro_project / "conf" / "local" / "parameters_autoencoders.yml"
    path.write_text(yaml.safe_dump(TINY_AUTOENCODERS))
    return kedro_project
