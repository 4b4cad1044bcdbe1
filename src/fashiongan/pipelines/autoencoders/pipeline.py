"""``kedro run --pipelines=autoencoders``: train three autoencoders, score, plot, report."""

from kedro.pipeline import Node, Pipeline

from fashiongan.pipelines.autoencoders.nodes import (
    collect_histories,
    evaluate_autoencoders,
    plot_autoencoders,
    train_denoising_autoencoder,
    train_vae,
    train_vanilla_autoencoder,
    write_autoencoders_report,
)

_MODELS = ["autoencoders_vanilla", "autoencoders_denoising", "autoencoders_vae"]
_NOISE, _DATA = "params:autoencoders.denoising.noise", "fashion_mnist_model_input"


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                func=train_vanilla_autoencoder,
                inputs=[_DATA, "params:autoencoders.vanilla"],
                outputs=["autoencoders_vanilla", "autoencoders_vanilla_history"],
                name="train_vanilla_autoencoder",
            ),
            Node(
                func=train_denoising_autoencoder,
                inputs=[_DATA, "params:autoencoders.denoising"],
                outputs=["autoencoders_denoising", "autoencoders_denoising_history"],
                name="train_denoising_autoencoder",
            ),
            Node(
                func=train_vae,
                inputs=[_DATA, "params:autoencoders.vae"],
                outputs=["autoencoders_vae", "vae.generator", "autoencoders_vae_history"],
                name="train_vae",
            ),
            Node(
                func=collect_histories,
                inputs=[f"{m}_history" for m in _MODELS],
                outputs="autoencoders_histories",
                name="collect_autoencoder_histories",
            ),
            Node(
                func=evaluate_autoencoders,
                inputs=[
                    _DATA,
                    *_MODELS,
                    _NOISE,
                    "params:autoencoders.vae.beta",
                    "params:autoencoders.evaluation",
                ],
                outputs="autoencoders_metrics",
                name="evaluate_autoencoders",
            ),
            Node(
                func=plot_autoencoders,
                inputs=[
                    _DATA,
                    *_MODELS,
                    "autoencoders_histories",
                    _NOISE,
                    "params:fashion_mnist.class_names",
                    "params:autoencoders.figures",
                ],
                outputs=["autoencoders_figures", "autoencoders_figures_report"],
                name="plot_autoencoders",
            ),
            Node(
                func=write_autoencoders_report,
                inputs=[
                    "autoencoders_metrics",
                    "autoencoders_histories",
                    "params:autoencoders.report_figures_dir",
                ],
                outputs="autoencoders_report",
                name="write_autoencoders_report",
            ),
        ]
    )
