import json

import mlflow
import pandas as pd
import torch

from fashiongan.datasets import TorchModelDataset
from fashiongan.models.mlp_gan import MLPGenerator
from tests.conftest import run_pipeline


def test_train_gan_end_to_end_with_mlflow(kedro_project):
    run_pipeline(kedro_project, ["data_processing"])
    run_pipeline(kedro_project, ["train_gan"])

    generator = TorchModelDataset(filepath="models/baseline/generator.safetensors").load()
    assert isinstance(generator, MLPGenerator)
    assert generator(torch.randn(2, 100)).shape == (2, 1, 28, 28)
    history = pd.read_csv(kedro_project / "data/08_reporting/baseline/training_history.csv")
    assert list(history["step"]) == [5, 10, 15, 20]
    metrics = json.loads(
        (kedro_project / "data/08_reporting/baseline/training_metrics.json").read_text()
    )
    assert metrics["iterations"] == 20 and "final_d_loss" in metrics
    for name in ("baseline_samples.png", "baseline_loss_curves.png"):
        assert (kedro_project / "data/08_reporting/baseline/figures" / name).stat().st_size > 1000
        assert (kedro_project / "reports/figures/baseline" / name).is_file()

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{kedro_project / 'mlflow.db'}")
    runs = client.search_runs(
        [client.get_experiment_by_name("fashiongan").experiment_id],
        filter_string="tags.mlflow.runName = 'train_gan'",
    )
    assert len(runs) == 1
    run = runs[0]
    assert run.data.params["baseline.training.batch_size"] == "16"
    assert {"d_loss", "g_loss", "d_acc_real", "d_acc_fake", "wall_time_s"} <= set(run.data.metrics)
    assert len(client.get_metric_history(run.info.run_id, "d_loss")) == 4
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "figures")}
    assert "figures/baseline_samples.png" in artifacts
    samples = {a.path for a in client.list_artifacts(run.info.run_id, "samples")}
    assert samples == {"samples/iteration_000010.png", "samples/iteration_000020.png"}
