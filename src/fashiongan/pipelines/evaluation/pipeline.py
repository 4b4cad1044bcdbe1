"""``kedro run --pipelines=evaluation``: every variant in models/<family>/ → metrics, figures, the
comparison, and the ``champion`` alias of each family in the MLflow Model Registry."""

from kedro.pipeline import Node, Pipeline

from fashiongan.pipelines.evaluation.nodes import (
    compile_report,
    evaluate_retrieval,
    plot_evaluation,
    promote_champions,
    sample_models,
    score_inception,
    score_models,
    write_report,
)

DATA = ["fashion_mnist_model_input", "fashion_mnist_captions"]


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                func=sample_models,
                inputs=["evaluation_generators", *DATA, "params:evaluation"],
                outputs="evaluation_samples",
                name="sample_models",
            ),
            Node(
                func=score_models,
                inputs=[
                    "evaluation_samples",
                    "evaluation_discriminators",
                    "evaluation_training_histories",
                    "evaluator_model",
                    *DATA,
                    "fashion_mnist_attributes",
                    "params:evaluation",
                ],
                outputs="evaluation_model_metrics",
                name="score_models",
            ),
            Node(
                func=score_inception,
                inputs=["evaluation_samples", "fashion_mnist_model_input", "params:evaluation"],
                outputs="evaluation_inception",
                name="score_inception",
            ),
            Node(
                func=evaluate_retrieval,
                inputs=[
                    "evaluation_generators",
                    "evaluation_embedders",
                    *DATA,
                    "params:evaluation",
                ],
                outputs=["evaluation_retrieval", "evaluation_retrieval_figures"],
                name="evaluate_retrieval",
            ),
            Node(
                func=plot_evaluation,
                inputs=[
                    "evaluation_generators",
                    "evaluation_samples",
                    "evaluation_training_histories",
                    "evaluator_model",
                    "evaluation_model_metrics",
                    "evaluation_retrieval_figures",
                    "params:fashion_mnist.class_names",
                    "params:evaluation",
                ],
                outputs="evaluation_figures",
                name="plot_evaluation",
            ),
            *report_nodes(),
        ]
    )


def report_nodes() -> list[Node]:
    """The comparison, the ``champion`` aliases it decides, and the report that states them."""
    return [
        Node(
            func=compile_report,
            inputs=[
                "evaluation_model_metrics",
                "evaluation_inception",
                "evaluation_retrieval",
                "fashion_mnist_model_input",
            ],
            outputs=["evaluation_metrics", "evaluation_details", "evaluation_mlflow_metrics"],
            name="compile_report",
        ),
        Node(
            func=promote_champions,
            inputs=["evaluation_generators", "evaluation_metrics", "params:evaluation"],
            outputs="evaluation_champions",
            name="promote_champions",
        ),
        Node(
            func=write_report,
            inputs=[
                "evaluation_metrics",
                "evaluation_model_metrics",
                "evaluation_retrieval",
                "evaluation_champions",
                "params:fashion_mnist.class_names",
            ],
            outputs="evaluation_report",
            name="write_report",
        ),
    ]
