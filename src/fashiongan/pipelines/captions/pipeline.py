"""``kedro run --pipelines=captions``: attributes, captions and composed queries of every item.

Its outputs are shared data products: train_gan's conditional GAN, evaluation, search_index and
the classifier read them. Its parameters stay under ``conditional`` (``captions``, ``composed``):
they shape the conditional GAN's training texts.
"""

from kedro.pipeline import Node, Pipeline

from fashiongan.pipelines.captions.nodes import describe_items, pair_composed_queries


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                func=describe_items,
                inputs=["fashion_mnist_model_input", "params:conditional.captions"],
                outputs=["fashion_mnist_attributes", "fashion_mnist_captions"],
                name="describe_items",
            ),
            Node(
                func=pair_composed_queries,
                inputs=["fashion_mnist_captions", "params:conditional.composed"],
                outputs="fashion_mnist_composed_queries",
                name="pair_composed_queries",
            ),
        ]
    )
