"""Captions: what each Fashion-MNIST item looks like (tone, fit, pattern), said in words."""

from fashiongan.pipelines.captions.pipeline import create_pipeline

__all__ = ["create_pipeline"]
