"""`torchrun -m fashiongan.training.launch`: a Kedro pipeline on 2 Gloo ranks, outputs written once."""

from __future__ import annotations

import json

import mlflow
import pytest
import torch

from fashiongan.datasets import TensorDictDataset
from fashiongan.training.launch import _params
from tests.scale.conftest import finish, start, torchrun

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]


def test_train_gan_under_torchrun_writes_one_set_of_outputs_and_one_mlflow_run(
    kedro_project, tmp_path
):
    g = torch.Generator().manual_seed(0)
    images = torch.rand(64, 1, 28, 28, generator=g) * 2 - 1
    labels = torch.arange(64) % 10
    TensorDictDataset(filepath="data/05_model_input/fashion_mnist.safetensors").save(
        {  # every split the catalog's contract names; only the training one is used
            f"{split}_{kind}": tensor.clone()  # safetensors refuses shared memory
            for split in ("train", "validation", "test")
            for kind, tensor in (("images", images), ("labels", labels))
        }
    )
    launch = ["-m", "fashiongan.training.launch", "--pipelines=train_gan", "--namespaces=baseline"]
    logs = tmp_path / "logs"  # one folder per rank
    finish(start(torchrun(2, f"--log-dir={logs}", "--tee=3", *launch), cwd=kedro_project), 360)

    (rank1,) = [p for p in logs.rglob("*") if p.is_dir() and p.name == "1"]
    assert "Rank 1 of 2 joined the gloo" in "".join(f.read_text() for f in rank1.glob("*.log"))
    metrics = json.loads(
        (kedro_project / "data/08_reporting/baseline/default/training_metrics.json").read_text()
    )
    assert metrics["iterations"] == 20
    assert (kedro_project / "models/baseline/default/generator.safetensors").stat().st_size > 0
    assert list((kedro_project / "data/06_models/checkpoints/baseline").glob("default/*/ckpt-*"))

    client = mlflow.MlflowClient(f"sqlite:///{kedro_project / 'mlflow.db'}")
    experiments = [e for e in client.search_experiments() if e.name == "fashiongan"]
    (run,) = client.search_runs([experiments[0].experiment_id])  # rank 1 opened none
    history = client.get_metric_history(run.info.run_id, "baseline/d_loss")
    assert [m.step for m in history] == [5, 10, 15, 20]
    paths = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"baseline", "figures"} <= paths  # sample grids from fit, figures from the catalog


def test_params_option_reads_like_kedro_run():
    assert _params("baseline.training.iterations=5,x=a") == {
        "baseline": {"training": {"iterations": 5}},
        "x": "a",
    }
    assert _params(None) == {}
    with pytest.raises(SystemExit, match="key=value"):
        _params("iterations")
