"""``kedro run --pipelines=train_gan``: the MLP baseline and the conditional GAN, one namespace each.

The conditional GAN reads the ``captions`` pipeline's tables (run it first: ``make data``).
:func:`create_conditional_training` is a template: ``conditional`` wraps it for Fashion-MNIST and
the pipeline registry wraps it again as ``fashioniq`` for FashionIQ's pairs.
"""

from kedro.pipeline import Node, Pipeline

from fashiongan.pipelines.train_gan.nodes import (
    encode_conditioning,
    plot_conditional,
    plot_training,
    train_baseline_gan,
    train_conditional,
    training_mlflow_metrics,
)

#: The template's free inputs: the training tensors and the texts of each item.
TEMPLATE_INPUTS = ("model_input", "captions", "composed_queries")
#: What conditional training makes, in the node's return order.
TRAINED_CONDITIONAL = [
    "generator",
    "discriminator",
    "embedder",
    "text_encoder",
    "training_history",
    "training_metrics",
]
#: The top-level parameters a namespace leaves as they are: the variant, which scopes checkpoints.
SHARED_PARAMETERS = {"params:run_name"}


def summary_to_mlflow() -> Node:
    """``training_metrics`` → ``training_mlflow_metrics``, the summary as MLflow metrics."""
    return Node(
        func=training_mlflow_metrics,
        inputs=["training_metrics", "params:training.mlflow_prefix"],
        outputs="training_mlflow_metrics",
        name="training_mlflow_metrics",
    )


def create_baseline_pipeline() -> Pipeline:
    nodes = [
        Node(
            func=train_baseline_gan,
            inputs=["fashion_mnist_model_input", "params:training", "params:run_name"],
            outputs=["generator", "discriminator", "training_history", "training_metrics"],
            name="train_baseline_gan",
        ),
        summary_to_mlflow(),
        Node(
            func=plot_training,
            inputs=["generator", "training_history", "params:figures"],
            outputs="training_figures",
            name="plot_training",
        ),
    ]
    return Pipeline(
        nodes,
        namespace="baseline",
        inputs={"fashion_mnist_model_input"},
        parameters=SHARED_PARAMETERS,
    )


def create_conditional_training() -> Pipeline:
    """Texts → BERT conditioning → G, D, embedder, text encoder and the summary's MLflow metrics
    (no namespace: a template).

    Inputs ``model_input`` (``train_images``, ``train_labels``), ``captions``,
    ``composed_queries``, ``params:{text_encoder, sample_captions, training}`` and the
    top-level ``params:run_name`` (a namespace wrapping it keeps: :data:`SHARED_PARAMETERS`).
    """
    return Pipeline(
        [
            Node(
                func=encode_conditioning,
                inputs=[
                    "captions",
                    "composed_queries",
                    "params:sample_captions",
                    "params:text_encoder",
                ],
                outputs="conditioning",
                name="encode_conditioning",
            ),
            Node(
                func=train_conditional,
                inputs=[
                    "model_input",
                    "conditioning",
                    "params:training",
                    "params:text_encoder",
                    "params:sample_captions",
                    "params:run_name",
                ],
                outputs=TRAINED_CONDITIONAL,
                name="train_conditional_gan",
            ),
            summary_to_mlflow(),
        ]
    )


def create_conditional_pipeline() -> Pipeline:
    plot = Node(
        func=plot_conditional,
        inputs=[
            "generator",
            "text_encoder",
            "training_history",
            "params:sample_captions",
            "params:figures",
        ],
        outputs="training_figures",
        name="plot_conditional",
    )
    return Pipeline(
        [create_conditional_training(), Pipeline([plot])],
        namespace="conditional",
        inputs={
            "model_input": "fashion_mnist_model_input",
            "captions": "fashion_mnist_captions",
            "composed_queries": "fashion_mnist_composed_queries",
        },
        parameters=SHARED_PARAMETERS,
    )


def create_pipeline(**kwargs) -> Pipeline:
    return create_baseline_pipeline() + create_conditional_pipeline()
