"""FashionIQ: ingestion, the conditional GAN at 64×64 RGB and the official Recall@K protocol."""

from fashiongan.pipelines.fashioniq.pipeline import create_pipeline

__all__ = ["create_pipeline"]
