"""Train the evaluator CNN: the classifier and feature extractor that scores every generator."""

from fashiongan.pipelines.train_evaluator.pipeline import create_pipeline

__all__ = ["create_pipeline"]
