"""``kedro run --pipelines=train_gan``: the MLP baseline and the conditional GAN, one namespace each."""

from kedro.pipeline import Node, Pipeline

from fashiongan.pipelines.train_gan.nodes import (
    describe_items,
    encode_conditioning,
    pair_composed_queries,
    plot_conditional,
    plot_training,
    train_baseline_gan,
    train_conditional,
)

#: Data products other pipelines (evaluation, search) read: not prefixed by a namespace.
SHARED = {"fashion_mnist_model_input", "fashion_mnist_attributes", "fashion_mnist_captions"}
#: The outputs of conditional training (also FashionIQ's), in the node's return order.
TRAINED_CONDITIONAL = [
    "generator",
    "discriminator",
    "embedder",
    "text_encoder",
    "training_history",
    "training_metrics",
]


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


def create_conditional_pipeline() -> Pipeline:
    nodes = [
        Node(
            func=describe_items,
            inputs=[
                "fashion_mnist_model_input",
                "params:captions.attributes",
                "params:captions.seed",
            ],
            outputs=["fashion_mnist_attributes", "fashion_mnist_captions"],
            name="describe_items",
        ),
        Node(
            func=pair_composed_queries,
            inputs=["fashion_mnist_captions", "params:composed"],
            outputs="composed_queries",
            name="pair_composed_queries",
        ),
        Node(
            func=encode_conditioning,
            inputs=[
                "fashion_mnist_captions",
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
                "fashion_mnist_model_input",
                "conditioning",
                "params:training",
                "params:text_encoder",
                "params:sample_captions",
            ],
            outputs=TRAINED_CONDITIONAL,
            name="train_conditional_gan",
        ),
        Node(
            func=plot_conditional,
            inputs=[
                "generator",
                "text_encoder",
                "training_history",
                "params:sample_captions",
                "params:figures",
            ],
            outputs=["training_figures", "training_figures_report"],
            name="plot_conditional",
        ),
    ]
    return Pipeline(
        nodes,
        namespace="conditional",
        inputs={"fashion_mnist_model_input"},
        outputs=SHARED - {"fashion_mnist_model_input"},
    )


def create_pipeline(**kwargs) -> Pipeline:
    return create_baseline_pipeline() + create_conditional_pipeline()
