import json

import mlflow
import pandas as pd
import pytest
import torch

from fashiongan.datasets import TorchModelDataset
from fashiongan.models.evaluator import EvaluatorCNN
from tests.conftest import run_pipeline


def test_train_evaluator_end_to_end_with_mlflow(evaluator_project):
    project = evaluator_project
    run_pipeline(project, ["data_processing", "train_evaluator"])

    model = TorchModelDataset(filepath="models/evaluator/default/evaluator.safetensors").load()
    assert isinstance(model, EvaluatorCNN)
    assert model.config.channels == (8, 16, 16) and model.config.feature_dim == 32
    assert model.features(torch.zeros(2, 1, 28, 28)).shape == (2, 32)

    history = pd.read_csv(project / "data/08_reporting/evaluator/default/training_history.csv")
    assert list(history["epoch"]) == [1, 2]
    metrics = json.loads((project / "data/08_reporting/evaluator/default/metrics.json").read_text())
    # Two epochs of the tiny CNN fit the training items (measured train accuracy 0.41 -> 0.87)
    # while the test accuracy is still near chance (0.18): the run is judged on what it wrote.
    assert history["train_accuracy"].iloc[-1] > history["train_accuracy"].iloc[0] + 0.2
    assert metrics["n_test"] == 50
    assert metrics["validation_accuracy"] == history["val_accuracy"].max()
    per_class = metrics["per_class_test_accuracy"]
    assert len(per_class) == 10  # 5 test items a class: the overall accuracy is their mean
    assert metrics["test_accuracy"] == pytest.approx(sum(per_class.values()) / 10)
    for name in ("evaluator_confusion_matrix.png", "evaluator_training_curves.png"):
        assert (project / "reports/figures/evaluator" / name).stat().st_size > 1000

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("fashiongan").experiment_id
    (run,) = client.search_runs([experiment])
    assert run.data.params["evaluator.training.epochs"] == "2"
    logged = {"test_accuracy", "evaluator/val_accuracy", "evaluator/train_loss"}
    assert logged | {"test_accuracy_class_0"} <= set(run.data.metrics)
    assert len(client.get_metric_history(run.info.run_id, "evaluator/val_accuracy")) == 2
    # The summary reaches MLflow through the catalog's evaluator_mlflow_metrics dataset.
    (test_accuracy,) = client.get_metric_history(run.info.run_id, "test_accuracy")
    assert (test_accuracy.step, test_accuracy.value) == (2, metrics["test_accuracy"])
    assert run.data.metrics["best_val_accuracy"] == metrics["validation_accuracy"]
    assert {f"test_accuracy_class_{i}" for i in range(10)} <= set(run.data.metrics)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "figures/evaluator")}
    assert "figures/evaluator/evaluator_confusion_matrix.png" in artifacts
