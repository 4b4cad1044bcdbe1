"""FashionIQ ingestion: the official captions, image splits and user-gathered pictures → tensors."""

from fashiongan.pipelines.fashioniq_processing.pipeline import create_pipeline

__all__ = ["create_pipeline"]
