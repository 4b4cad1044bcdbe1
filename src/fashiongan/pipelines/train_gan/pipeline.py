"""``kedro run --pipelines=train_gan``: the MLP baseline GAN in the ``baseline`` namespace."""

from kedro.pipeline import Node, Pipeline

from fashiongan.pipelines.train_gan.nodes import plot_training, train_baseline_gan


def create_baseline_pipeline() -> Pipeline:
    nodes = [
        Node(
            func=train_baseline_gan,
            inputs=["fashion_mnist_model_input", "params:training"],
            outputs=["generator", "discriminator", "training_history", "training_metrics"],
            name="train_baseline_gan",
        ),
        Node(
            func=plot_training,
            inputs=["generator", "training_history", "params:figures"],
            outputs=["training_figures", "training_figures_report"],
            name="plot_training",
        ),
    ]
    return Pipeline(nodes, namespace="baseline", inputs={"fashion_mnist_model_input"})


def create_pipeline(**kwargs) -> Pipeline:
    return create_baseline_pipeline()
