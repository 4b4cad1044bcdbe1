"""``kedro run --pipelines=search_index``: embed the catalog and build its faiss index."""

from fashiongan.pipelines.search_index.pipeline import create_pipeline

__all__ = ["create_pipeline"]
