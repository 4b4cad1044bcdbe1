"""``kedro run --pipelines=train_evaluator``: evaluator CNN trained on real images, then tested."""

from kedro.pipeline import Node, Pipeline

from fashiongan.pipelines.train_evaluator.nodes import (
    evaluate_evaluator,
    evaluator_mlflow_metrics,
    plot_evaluator,
    train_evaluator,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                func=train_evaluator,
                inputs=[
                    "fashion_mnist_model_input",
                    "params:evaluator.training",
                    "params:run_name",
                ],
                outputs=["evaluator_model", "evaluator_training_history"],
                name="train_evaluator",
            ),
            Node(
                func=evaluate_evaluator,
                inputs=[
                    "evaluator_model",
                    "fashion_mnist_model_input",
                    "evaluator_training_history",
                    "params:fashion_mnist.class_names",
                    "params:evaluator.training.eval_batch_size",
                ],
                outputs=["evaluator_metrics", "evaluator_test_confusion"],
                name="evaluate_evaluator",
            ),
            Node(
                func=evaluator_mlflow_metrics,
                inputs="evaluator_metrics",
                outputs="evaluator_mlflow_metrics",
                name="evaluator_mlflow_metrics",
            ),
            Node(
                func=plot_evaluator,
                inputs=[
                    "evaluator_test_confusion",
                    "evaluator_training_history",
                    "evaluator_metrics",
                    "params:fashion_mnist.class_names",
                ],
                outputs="evaluator_figures",
                name="plot_evaluator",
            ),
        ]
    )
