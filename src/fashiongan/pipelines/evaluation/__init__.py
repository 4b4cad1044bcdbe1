"""``kedro run --pipelines=evaluation``: score every trained generator and compare them."""

from fashiongan.pipelines.evaluation.pipeline import create_pipeline

__all__ = ["create_pipeline"]
