"""``kedro run --pipelines=data_processing``: raw idx files → verified, split, scaled tensors."""

from kedro.pipeline import Node, Pipeline

from fashiongan.pipelines.data_processing.nodes import (
    build_model_input,
    parse_fashion_mnist,
    split_train_validation,
    summarise_dataset,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                func=parse_fashion_mnist,
                inputs=["fashion_mnist_raw", "params:fashion_mnist.class_names"],
                outputs="fashion_mnist_parsed",
                name="parse_fashion_mnist",
            ),
            Node(
                func=split_train_validation,
                inputs=[
                    "fashion_mnist_parsed",
                    "params:fashion_mnist.validation_fraction",
                    "params:fashion_mnist.seed",
                ],
                outputs="fashion_mnist_split",
                name="split_train_validation",
            ),
            Node(
                func=build_model_input,
                inputs=["fashion_mnist_parsed", "fashion_mnist_split"],
                outputs="fashion_mnist_model_input",
                name="build_model_input",
            ),
            Node(
                func=summarise_dataset,
                inputs=["fashion_mnist_model_input", "params:fashion_mnist.class_names"],
                outputs="fashion_mnist_summary",
                name="summarise_dataset",
            ),
        ]
    )
