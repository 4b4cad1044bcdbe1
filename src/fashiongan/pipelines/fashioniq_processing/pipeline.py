"""``kedro run --pipelines=fashioniq_processing``: official FashionIQ files → pictures and pairs."""

from kedro.pipeline import Node, Pipeline

from fashiongan.pipelines.fashioniq_processing.nodes import ingest_images, read_annotations


def create_pipeline(**kwargs) -> Pipeline:
    nodes = [
        Node(
            func=read_annotations,
            inputs="params:data",
            outputs=["annotations", "listed_gallery"],
            name="read_annotations",
        ),
        Node(
            func=ingest_images,
            inputs=["annotations", "listed_gallery", "params:data"],
            outputs=["images", "items", "pairs", "gallery", "ingestion"],
            name="ingest_images",
        ),
    ]
    return Pipeline(nodes, namespace="fashioniq")
