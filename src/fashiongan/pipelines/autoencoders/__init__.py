"""Autoencoders: a vanilla conv AE, a denoising AE and a convolutional β-VAE."""

from fashiongan.pipelines.autoencoders.pipeline import create_pipeline

__all__ = ["create_pipeline"]
