"""``kedro run --pipelines=autoencoders``: train three autoencoders, score, plot, report."""

from kedro.pipeline import Node, Pipeline

from fashiongan.pipelines.autoencoders.nodes import (
    autoencoders_mlflow_metrics,
    evaluate_autoencoders,
    plot_autoencoders,
    train_denoising_autoencoder,
    train_vae,
    train_vanilla_autoencoder,
    write_autoencoders_report,
)
from fashiongan.training.history import collect_histories

_MODELS = ["autoencoders_vanilla", "autoencoders_denoising", "autoencoders_vae"]
# The evaluation and the figures use the denoiser's noise levels: they take its whole block,
# since Kedro cannot type a block and one of its sub-blocks in the same run.
_DENOISING, _DATA = "params:autoencoders.denoising", "fashion_mnist_model_input"
_RUN_NAME = "params:run_name"  # the variant: each resumes only its own checkpoints


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                func=train_vanilla_autoencoder,
                inputs=[_DATA, "params:autoencoders.vanilla", _RUN_NAME],
                outputs=["autoencoders_vanilla", "autoencoders_vanilla_history"],
                name="train_vanilla_autoencoder",
            ),
            Node(
                func=train_denoising_autoencoder,
                inputs=[_DATA, _DENOISING, _RUN_NAME],
                outputs=["autoencoders_denoising", "autoencoders_denoising_history"],
                name="train_denoising_autoencoder",
            ),
            Node(
                func=train_vae,
                inputs=[_DATA, "params:autoencoders.vae", _RUN_NAME],
                outputs=["autoencoders_vae", "vae.generator", "autoencoders_vae_history"],
                name="train_vae",
            ),
            Node(
                func=collect_histories,
                inputs={
                    "vanilla AE": "autoencoders_vanilla_history",
                    "denoising AE": "autoencoders_denoising_history",
                    "VAE": "autoencoders_vae_history",
                },
                outputs="autoencoders_histories",
                name="collect_autoencoder_histories",
            ),
            Node(
                func=evaluate_autoencoders,
                inputs=[
                    _DATA,
                    *_MODELS,
                    _DENOISING,
                    "params:autoencoders.vae.beta",
                    "params:autoencoders.evaluation",
                ],
                outputs="autoencoders_metrics",
                name="evaluate_autoencoders",
            ),
            Node(
                func=autoencoders_mlflow_metrics,
                inputs="autoencoders_metrics",
                outputs="autoencoders_mlflow_metrics",
                name="autoencoders_mlflow_metrics",
            ),
            Node(
                func=plot_autoencoders,
                inputs=[
                    _DATA,
                    *_MODELS,
                    "autoencoders_histories",
                    _DENOISING,
                    "params:fashion_mnist.class_names",
                    "params:autoencoders.figures",
                ],
                outputs="autoencoders_figures",
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
