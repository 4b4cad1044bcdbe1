"""``kedro run --pipelines=classifier``: titles → vocabulary → three classifiers → comparison.

The titles' tone/fit/pattern words come from ``fashion_mnist_attributes`` (the ``captions``
pipeline), so run ``captions`` first (or in the same run).
"""

from kedro.pipeline import Node, Pipeline

from fashiongan.pipelines.classifier.nodes import (
    build_title_vocabulary,
    classifier_mlflow_metrics,
    encode_product_titles,
    evaluate_classifiers,
    make_product_titles,
    plot_classifiers,
    title_examples,
    train_image_classifier,
    train_multimodal_classifier,
    train_text_classifier,
    write_classifier_report,
)
from fashiongan.training.history import collect_histories

_DATA, _CLASSES = "fashion_mnist_model_input", "params:fashion_mnist.class_names"
_TRAIN_INPUTS = [
    _DATA,
    "classifier_text_input",
    "classifier_vocabulary",
    "params:classifier.training",
    "params:run_name",
]
_TRAINERS = {
    "multimodal": train_multimodal_classifier,
    "image": train_image_classifier,
    "text": train_text_classifier,
}


def create_pipeline(**kwargs) -> Pipeline:
    training = [
        Node(
            func=func,
            inputs=_TRAIN_INPUTS,
            outputs=[f"classifier_{modality}", f"classifier_{modality}_history"],
            name=f"train_{modality}_classifier",
        )
        for modality, func in _TRAINERS.items()
    ]
    return Pipeline(
        [
            Node(
                func=make_product_titles,
                inputs=[_DATA, "fashion_mnist_attributes", "params:classifier.titles"],
                outputs="classifier_titles",
                name="make_product_titles",
            ),
            Node(
                func=build_title_vocabulary,
                inputs=["classifier_titles", "params:classifier.text"],
                outputs="classifier_vocabulary",
                name="build_title_vocabulary",
            ),
            Node(
                func=encode_product_titles,
                inputs=["classifier_titles", "classifier_vocabulary", "params:classifier.text"],
                outputs="classifier_text_input",
                name="encode_product_titles",
            ),
            *training,
            Node(
                func=collect_histories,
                inputs={m: f"classifier_{m}_history" for m in _TRAINERS},
                outputs="classifier_histories",
                name="collect_classifier_histories",
            ),
            Node(
                func=evaluate_classifiers,
                inputs=[_DATA, "classifier_text_input", "classifier_titles"]
                + [f"classifier_{m}" for m in _TRAINERS],
                outputs="classifier_metrics",
                name="evaluate_classifiers",
            ),
            Node(
                func=classifier_mlflow_metrics,
                inputs="classifier_metrics",
                outputs="classifier_mlflow_metrics",
                name="classifier_mlflow_metrics",
            ),
            Node(
                func=plot_classifiers,
                inputs=["classifier_metrics", "classifier_histories", _CLASSES],
                outputs="classifier_figures",
                name="plot_classifiers",
            ),
            Node(
                func=title_examples,
                inputs=["classifier_titles", "params:classifier.report"],
                outputs="classifier_title_examples",
                name="pick_title_examples",
            ),
            Node(
                func=write_classifier_report,
                inputs=[
                    "classifier_metrics",
                    "classifier_histories",
                    "params:classifier.titles",
                    "classifier_title_examples",
                    _CLASSES,
                    "params:classifier.report.figures_dir",
                ],
                outputs="classifier_report",
                name="write_classifier_report",
            ),
        ]
    )
