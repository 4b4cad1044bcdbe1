import torch

from fashiongan.models.mlp_gan import MLPDiscriminator, MLPGenerator
from tests.model_configs import mlp_config


def test_seed_architecture_shapes_and_layers():
    config = mlp_config()
    generator, discriminator = MLPGenerator(config), MLPDiscriminator(config)
    linear_g = [m for m in generator.modules() if isinstance(m, torch.nn.Linear)]
    linear_d = [m for m in discriminator.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear_g] == [
        (100, 256),
        (256, 512),
        (512, 1024),
        (1024, 784),
    ]
    assert [(m.in_features, m.out_features) for m in linear_d] == [(784, 512), (512, 256), (256, 1)]
    images = generator(torch.randn(5, 100))
    assert images.shape == (5, 1, 28, 28)
    assert images.min() >= -1 and images.max() <= 1
    assert discriminator(images).shape == (5,)


def test_sample_is_eval_mode_and_restores_training_flag():
    generator = MLPGenerator(mlp_config(generator_hidden=(8, 8, 8)))
    generator.train()
    first = generator.sample(4, torch.Generator().manual_seed(0))
    second = generator.sample(4, torch.Generator().manual_seed(0))
    assert torch.equal(first, second), "dropout must be off when sampling"
    assert generator.training
