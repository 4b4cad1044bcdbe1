"""Multimodal product classifier (image CNN + title LSTM) and its image-only/text-only ablations."""

from fashiongan.pipelines.classifier.pipeline import create_pipeline

__all__ = ["create_pipeline"]
