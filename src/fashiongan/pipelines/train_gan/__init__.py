"""GAN training: the MLP baseline (and the conditional GAN), each in its own namespace."""

from fashiongan.pipelines.train_gan.pipeline import create_pipeline

__all__ = ["create_pipeline"]
