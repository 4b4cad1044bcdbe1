import json

import mlflow
import pandas as pd
import torch

from fashiongan.datasets import TorchModelDataset
from fashiongan.models.autoencoders import ConvAutoencoder, ConvVAE, VAEDecoder
from tests.conftest import run_pipeline

FIGURES = ("reconstructions", "denoising", "vae_samples", "latent_space", "training_curves")


def test_autoencoders_end_to_end_with_mlflow(tiny_autoencoders):
    project = tiny_autoencoders
    run_pipeline(project, ["data_processing", "autoencoders"])  # one session: faster

    for name, cls in (("vanilla", ConvAutoencoder), ("denoising", ConvAutoencoder)):
        model = TorchModelDataset(filepath=f"models/autoencoders/default/{name}.safetensors").load()
        assert isinstance(model, cls) and model.config.latent_dim == 4
    assert isinstance(
        TorchModelDataset(filepath="models/autoencoders/default/vae.safetensors").load(), ConvVAE
    )
    generator = TorchModelDataset(filepath="models/vae/default/generator.safetensors").load()
    assert isinstance(generator, VAEDecoder)
    assert generator(torch.randn(3, generator.config.latent_dim)).shape == (3, 1, 28, 28)

    history = pd.read_csv(project / "data/08_reporting/autoencoders/default/vae_history.csv")
    assert list(history["epoch"]) == [1, 2]
    assert {"train_loss", "train_kl", "val_elbo", "elapsed_s"} <= set(history.columns)

    metrics = json.loads(
        (project / "data/08_reporting/autoencoders/default/metrics.json").read_text()
    )
    assert set(metrics["reconstruction"]) == {"vanilla", "denoising", "vae"}
    for scores in metrics["reconstruction"].values():
        assert 0 <= scores["mse"] <= 1 and 0 < scores["psnr_db"] < 100 and scores["ssim"] <= 1
    gauss = metrics["denoising"]["gaussian"]
    assert gauss["psnr_gain_db"] == gauss["denoised_psnr_db"] - gauss["noisy_psnr_db"]
    assert metrics["vae"]["elbo"] == -(metrics["vae"]["reconstruction"] + metrics["vae"]["kl"])

    for stem in FIGURES:
        name = f"autoencoders_{stem}.png"
        assert (project / "reports/figures/autoencoders" / name).stat().st_size > 1000
    report = (project / "reports/autoencoders.md").read_text()
    assert "| Vanilla conv AE |" in report and "## Denoising" in report and "ELBO" in report

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    (run,) = client.search_runs(
        [client.get_experiment_by_name("fashiongan").experiment_id],
        filter_string="tags.mlflow.runName = 'data_processing+autoencoders'",
    )
    assert run.data.params["autoencoders.vae.beta"] == "1.0"
    assert len(client.get_metric_history(run.info.run_id, "vae/val_elbo")) == 2
    assert len(client.get_metric_history(run.info.run_id, "vanilla/train_loss")) == 2
    assert "test/denoising/masking/psnr_gain_db" in run.data.metrics
    # The summary reaches MLflow through the catalog's autoencoders_mlflow_metrics dataset.
    (elbo,) = client.get_metric_history(run.info.run_id, "test/vae/elbo")
    assert (elbo.step, elbo.value) == (0, metrics["vae"]["elbo"])
    assert run.data.metrics["test/denoising/gaussian/psnr_gain_db"] == gauss["psnr_gain_db"]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "figures/autoencoders")}
    assert "figures/autoencoders/autoencoders_vae_samples.png" in artifacts
