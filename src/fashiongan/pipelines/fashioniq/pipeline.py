"""FashionIQ's own nodes: pairs → the trainer's items, then Recall@K, figures and a report.

``kedro run --pipelines=fashioniq`` runs more: the pipeline registry joins ingestion
(``fashioniq_processing``), these nodes and the conditional GAN's training template, all in
the ``fashioniq`` namespace (datasets ``fashioniq.*``, parameters ``fashioniq.*``).
"""

from kedro.pipeline import Node, Pipeline

from fashiongan.pipelines.fashioniq.nodes import (
    encode_queries,
    fashioniq_metrics,
    fashioniq_mlflow_metrics,
    fit_text_projection,
    make_training_items,
    plot_fashioniq,
    score_queries,
    training_input,
    write_fashioniq_report,
)


def create_items_pipeline() -> Pipeline:
    """Pairs → ``training_items`` (the template's captions and composed queries) and
    ``model_input`` (its pictures and labels)."""
    nodes = [
        Node(
            func=make_training_items,
            inputs=["pairs", "params:training_items"],
            outputs="training_items",
            name="make_training_items",
        ),
        Node(
            func=training_input,
            inputs=["images", "training_items", "params:text_encoder"],
            outputs="model_input",
            name="training_input",
        ),
    ]
    return Pipeline(nodes, namespace="fashioniq")


def create_evaluation_pipeline() -> Pipeline:
    evaluation = "params:evaluation"
    nodes = [
        Node(
            func=encode_queries,
            inputs=["pairs", evaluation, "params:text_encoder"],
            outputs="query_text",
            name="encode_queries",
        ),
        Node(
            func=fit_text_projection,
            inputs=["embedder", "images", "training_items", "conditioning", evaluation],
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
                evaluation,
            ],
            outputs="rankings",
            name="score_queries",
        ),
        Node(
            func=fashioniq_metrics,
            inputs=["rankings", evaluation],
            outputs="metrics",
            name="fashioniq_metrics",
        ),
        Node(
            func=fashioniq_mlflow_metrics,
            inputs=["metrics", "params:evaluation.mlflow_prefix"],
            outputs="mlflow_metrics",
            name="fashioniq_mlflow_metrics",
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
                evaluation,
            ],
            outputs="figures",
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
                evaluation,
            ],
            outputs="report",
            name="write_fashioniq_report",
        ),
    ]
    return Pipeline(nodes, namespace="fashioniq")


def create_pipeline(**kwargs) -> Pipeline:
    return create_items_pipeline() + create_evaluation_pipeline()
