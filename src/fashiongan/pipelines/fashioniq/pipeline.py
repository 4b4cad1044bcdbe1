"""``kedro run --pipelines=fashioniq``: ingestion, conditioning, training, Recall@K and a report.

Everything lives in the ``fashioniq`` namespace (datasets ``fashioniq.*``, parameters
``fashioniq.*``); the training nodes are the Fashion-MNIST ones (``train_gan.nodes``).
"""

from kedro.pipeline import Node, Pipeline

from fashiongan.pipelines.fashioniq.nodes import (
    encode_queries,
    fashioniq_metrics,
    fit_text_projection,
    make_training_items,
    plot_fashioniq,
    score_queries,
    train_fashioniq_gan,
    write_fashioniq_report,
)
from fashiongan.pipelines.fashioniq_processing import create_pipeline as create_processing
from fashiongan.pipelines.train_gan.nodes import encode_conditioning
from fashiongan.pipelines.train_gan.pipeline import TRAINED_CONDITIONAL


def create_training_pipeline() -> Pipeline:
    nodes = [
        Node(
            func=make_training_items,
            inputs=["pairs", "params:training_items"],
            outputs="training_items",
            name="make_training_items",
        ),
        Node(  # the same function as Fashion-MNIST: items serve as captions and composed queries
            func=encode_conditioning,
            inputs=[
                "training_items",
                "training_items",
                "params:sample_captions",
                "params:text_encoder",
            ],
            outputs="conditioning",
            name="encode_conditioning",
        ),
        Node(
            func=train_fashioniq_gan,
            inputs=[
                "images",
                "training_items",
                "conditioning",
                "params:training",
                "params:text_encoder",
                "params:sample_captions",
            ],
            outputs=TRAINED_CONDITIONAL,
            name="train_fashioniq_gan",
        ),
    ]
    return Pipeline(nodes, namespace="fashioniq")


def create_evaluation_pipeline() -> Pipeline:
    nodes = [
        Node(
            func=encode_queries,
            inputs=["pairs", "params:evaluation", "params:text_encoder"],
            outputs="query_text",
            name="encode_queries",
        ),
        Node(
            func=fit_text_projection,
            inputs=["embedder", "images", "training_items", "conditioning", "params:evaluation"],
            outputs="text_projection",
            name="fit_text_projection",
        ),
        Node(
            func=score_queries,
            inputs=[
                "generator",
                "embedder",
                "images",
                "pairs",
                "gallery",
                "query_text",
                "text_projection",
                "params:evaluation",
            ],
            outputs="rankings",
            name="score_queries",
        ),
        Node(
            func=fashioniq_metrics,
            inputs=["rankings", "params:evaluation"],
            outputs="metrics",
            name="fashioniq_metrics",
        ),
        Node(
            func=plot_fashioniq,
            inputs=[
                "generator",
                "images",
                "items",
                "pairs",
                "query_text",
                "rankings",
                "training_history",
                "params:evaluation",
            ],
            outputs=["figures", "figures_report"],
            name="plot_fashioniq",
        ),
        Node(
            func=write_fashioniq_report,
            inputs=[
                "ingestion",
                "training_items",
                "training_metrics",
                "metrics",
                "params:training",
                "params:evaluation",
            ],
            outputs="report",
            name="write_fashioniq_report",
        ),
    ]
    return Pipeline(nodes, namespace="fashioniq")


def create_pipeline(**kwargs) -> Pipeline:
    return create_processing() + create_training_pipeline() + create_evaluation_pipeline()
