import json

import mlflow
import pandas as pd
import pytest
import torch

from fashiongan.datasets import TensorDictDataset, TextEncoderDataset, TorchModelDataset
from fashiongan.generation import text_encoder as generation_text_encoder
from fashiongan.models.conditional_gan import ConditionalGenerator, ImageEmbedder
from fashiongan.models.mlp_gan import MLPGenerator
from fashiongan.text.encoder import TextEncoder
from tests.conftest import make_kedro_project, run_pipeline
from tests.model_configs import text_encoder_params


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Real KedroSession runs on tiny data: data_processing and captions (``make data``), then
    train_gan (both namespaces)."""
    monkeypatch = pytest.MonkeyPatch()
    project = make_kedro_project(tmp_path_factory.mktemp("train_gan"), monkeypatch)
    run_pipeline(project, ["data_processing", "captions"])
    run_pipeline(project, ["train_gan"])
    yield project
    monkeypatch.undo()


def _run(project, name):
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    runs = client.search_runs(
        [client.get_experiment_by_name("fashiongan").experiment_id],
        filter_string=f"tags.mlflow.runName = '{name}'",
    )
    assert len(runs) == 1
    return client, runs[0]


def test_baseline_outputs_and_mlflow(trained):
    generator = TorchModelDataset(
        filepath=str(trained / "models/baseline/default/generator.safetensors")
    ).load()
    assert isinstance(generator, MLPGenerator)
    assert generator(torch.randn(2, 100)).shape == (2, 1, 28, 28)
    history = pd.read_csv(trained / "data/08_reporting/baseline/default/training_history.csv")
    assert list(history["step"]) == [5, 10, 15, 20]
    metrics = json.loads(
        (trained / "data/08_reporting/baseline/default/training_metrics.json").read_text()
    )
    assert metrics["iterations"] == 20 and "final_d_loss" in metrics
    for name in ("baseline_samples.png", "baseline_loss_curves.png"):
        assert (trained / "reports/figures/baseline" / name).stat().st_size > 1000
    assert not (trained / "data/08_reporting/baseline/default/figures").exists()  # saved once

    client, run = _run(trained, "train_gan")
    assert run.data.params["baseline.training.batch_size"] == "16"
    assert {
        "baseline/d_loss",
        "baseline/g_loss",
        "baseline/d_acc_real",
        "baseline/d_acc_fake",
    } <= set(run.data.metrics)
    assert len(client.get_metric_history(run.info.run_id, "baseline/d_loss")) == 4
    # The summary reaches MLflow through the catalog's training_mlflow_metrics dataset.
    (final,) = client.get_metric_history(run.info.run_id, "baseline/final_d_loss")
    assert (final.step, final.value) == (20, pytest.approx(metrics["final_d_loss"]))
    assert run.data.metrics["baseline/wall_time_s"] == metrics["wall_time_s"]
    assert "figures/baseline/baseline_samples.png" in {
        a.path for a in client.list_artifacts(run.info.run_id, "figures/baseline")
    }
    samples = {a.path for a in client.list_artifacts(run.info.run_id, "baseline/samples")}
    assert samples == {
        "baseline/samples/iteration_000010.png",
        "baseline/samples/iteration_000020.png",
    }


def test_conditional_outputs_and_mlflow(trained):
    generator = TorchModelDataset(
        filepath=str(trained / "models/conditional/default/generator.safetensors")
    ).load()
    embedder = TorchModelDataset(
        filepath=str(trained / "models/conditional/default/embedder.safetensors")
    ).load()
    assert isinstance(generator, ConditionalGenerator) and isinstance(embedder, ImageEmbedder)
    assert generator.config.text_dim == 384
    # The generator names the encoder it was trained with: the folder saved beside it, whose
    # tuned last layer differs from the bundled MiniLM's and whose other layers do not.
    folder = trained / "models/conditional/default/text_encoder"
    assert generator.config.text_encoder == str(folder)
    tuned = TextEncoderDataset(filepath=str(folder)).load()
    bundled = TextEncoder.from_params(text_encoder_params(), device="cpu")
    assert tuned.pooling == "mean" and tuned.trainable_top_layers == 0  # loads frozen
    assert tuned.head.pools == 2 and tuned.head.out.weight.abs().sum() > 0  # trained from zero
    # Inference (CLI, search, evaluation) encodes with that head: not the plain pooling.
    asked = ["a dark ankle boot", "a wide patterned pullover"]
    from_model = generation_text_encoder(generator.config.text_encoder, "mean").encode(asked)
    torch.testing.assert_close(from_model, tuned.encode(asked))
    tuned.head = None
    assert (from_model - tuned.encode(asked)).abs().max() > 1e-4
    layers = tuned.model.encoder.layer
    assert not torch.equal(
        layers[-1].output.dense.weight, bundled.model.encoder.layer[-1].output.dense.weight
    )
    assert torch.equal(
        layers[0].output.dense.weight, bundled.model.encoder.layer[0].output.dense.weight
    )
    captions = pd.read_parquet(trained / "data/04_feature/fashion_mnist_captions.parquet")
    assert (
        set(captions["split"]) == {"train", "validation", "test"}
        and captions["caption"].str.len().min() > 0
    )
    composed = pd.read_parquet(trained / "data/04_feature/composed_queries.parquet")
    assert len(composed) == (captions["split"] == "train").sum()
    history = pd.read_csv(trained / "data/08_reporting/conditional/default/training_history.csv")
    assert {"d_loss", "g_adv_loss", "g_triplet_loss", "e_loss", "d_aux_loss"} <= set(
        history.columns
    )
    discriminator = TorchModelDataset(
        filepath=str(trained / "models/conditional/default/discriminator.safetensors")
    ).load()
    assert len(discriminator.config.aux_classes) == 4  # class, tone, fit, pattern
    conditioning = TensorDictDataset(
        filepath=str(trained / "data/05_model_input/conditional/default/conditioning.safetensors")
    ).load()
    stated, truth = conditioning["text_attributes"], conditioning["item_attributes"]
    assert stated.shape == (len(conditioning["text_embeddings"]), 3) and (stated >= 0).any()
    assert truth.shape == (len(composed), 3) and truth.min() >= 0
    hidden, mask = conditioning["text_hidden"], conditioning["text_mask"]
    assert int(conditioning["text_hidden_top_layers"]) == 1
    assert hidden.shape[:2] == mask.shape and len(hidden) == len(stated)
    assert (trained / "reports/figures/conditional/conditional_samples.png").stat().st_size > 1000
    client, run = _run(trained, "train_gan")
    assert {"conditional/d_loss", "conditional/g_triplet_loss"} <= set(run.data.metrics)
    summary = json.loads(
        (trained / "data/08_reporting/conditional/default/training_metrics.json").read_text()
    )
    (final,) = client.get_metric_history(run.info.run_id, "conditional/final_d_loss")
    assert (final.step, final.value) == (
        summary["iterations"],
        pytest.approx(summary["final_d_loss"]),
    )
    assert run.data.params["conditional.training.loss"] == "hinge"
    epochs = {a.path for a in client.list_artifacts(run.info.run_id, "conditional/samples")}
    assert epochs == {"conditional/samples/epoch_001.png", "conditional/samples/epoch_002.png"}
