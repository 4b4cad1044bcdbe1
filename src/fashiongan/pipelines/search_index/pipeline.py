"""``kedro run --pipelines=search_index``: catalog pictures → embeddings → faiss index → evaluation."""

from kedro.pipeline import Node, Pipeline

from fashiongan.pipelines.search_index.nodes import (
    build_search_index,
    collect_catalog,
    embed_catalog,
    encode_titles,
    evaluate_search,
    search_mlflow_metrics,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                func=collect_catalog,
                inputs=[
                    "fashion_mnist_model_input",
                    "fashion_mnist_captions",
                    "conditional.embedder",
                    "params:fashion_mnist.class_names",
                    "params:search_index.source",
                ],
                outputs=["search_catalog", "search_thumbnails"],
                name="collect_catalog",
            ),
            Node(
                func=embed_catalog,
                inputs=[
                    "search_thumbnails",
                    "conditional.embedder",
                    "params:search_index.embed_batch_size",
                ],
                outputs="search_vectors",
                name="embed_catalog",
            ),
            Node(
                func=encode_titles,
                inputs=["search_catalog", "conditional.generator"],
                outputs="search_title_vectors",
                name="encode_titles",
            ),
            Node(
                func=build_search_index,
                inputs=["search_vectors", "params:search_index.index"],
                outputs=["search_faiss_index", "search_index_info"],
                name="build_search_index",
            ),
            Node(
                func=evaluate_search,
                inputs=[
                    "conditional.generator",
                    "conditional.embedder",
                    "search_faiss_index",
                    "search_catalog",
                    "search_thumbnails",
                    "search_vectors",
                    "search_index_info",
                    "params:search_index.evaluation",
                    "params:search_app.query",
                ],
                outputs=["search_metrics", "search_figures"],
                name="evaluate_search",
            ),
            Node(
                func=search_mlflow_metrics,
                inputs="search_metrics",
                outputs="search_mlflow_metrics",
                name="search_mlflow_metrics",
            ),
        ]
    )
