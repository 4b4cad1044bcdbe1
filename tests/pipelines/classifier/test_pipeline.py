import json

import mlflow
import pandas as pd

from fashiongan.datasets import TensorDictDataset, TorchModelDataset
from fashiongan.models.classifier import ProductClassifier
from tests.conftest import run_pipeline


def test_classifier_end_to_end_with_mlflow(tiny_classifier):
    project = tiny_classifier
    run_pipeline(project, ["data_processing", "captions", "classifier"])  # one session: faster

    titles = pd.read_csv(project / "data/04_feature/classifier/product_titles.csv")
    assert titles.groupby("split").size().to_dict() == {"test": 50, "train": 180, "validation": 20}
    attributes = TensorDictDataset(filepath="data/04_feature/fashion_mnist_attributes.safetensors")
    test_titles = titles[titles["split"] == "test"].sort_values("index")
    for name in ("tone", "fit", "pattern"):  # the titles describe the captions' attributes
        assert test_titles[name].tolist() == attributes.load()[f"test_{name}"].tolist()
    assert set(titles["noise_kind"]) <= {"clean", "shared", "dropped", "misleading"}
    vocabulary = json.loads((project / "data/04_feature/classifier/vocabulary.json").read_text())
    assert vocabulary["<pad>"] == 0 and vocabulary["<unk>"] == 1

    for modality in ("multimodal", "image", "text"):
        model = TorchModelDataset(
            filepath=f"models/classifier/default/{modality}.safetensors"
        ).load()
        assert isinstance(model, ProductClassifier) and model.config.modality == modality
        assert model.config.vocab_size == len(vocabulary)
        history = pd.read_csv(
            project / f"data/08_reporting/classifier/default/{modality}_history.csv"
        )
        assert list(history["epoch"]) == [1, 2]

    metrics = json.loads(
        (project / "data/08_reporting/classifier/default/metrics.json").read_text()
    )
    assert set(metrics["models"]) == {"multimodal", "image", "text"}
    for scores in metrics["models"].values():
        for key in ("accuracy", "macro_precision", "macro_recall", "macro_f1"):
            assert 0 <= scores[key] <= 1
        assert sum(map(sum, scores["confusion"])) == 50
    models = metrics["models"]
    fused_above = [
        models["multimodal"][metric] > models[ablation][metric]
        for ablation in ("image", "text")
        for metric in ("accuracy", "macro_f1")
    ]
    assert metrics["fusion_beats_both"] is all(fused_above)

    report = (project / "reports/classifier_comparison.md").read_text()
    assert "| Multimodal (image + title) |" in report and "| Title only |" in report
    assert ("Fusion beats both" in report) == metrics["fusion_beats_both"]
    assert "## Title noise model" in report
    for name in ("classifier_confusion.png", "classifier_training_curves.png"):
        assert (project / "reports/figures/classifier" / name).stat().st_size > 1000

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    (run,) = client.search_runs(
        [client.get_experiment_by_name("fashiongan").experiment_id],
        filter_string="tags.mlflow.runName = 'data_processing+captions+classifier'",
    )
    assert run.data.params["classifier.titles.noise.misleading"] == "0.15"
    assert {"test/multimodal/macro_f1", "test/text/accuracy"} <= set(run.data.metrics)
    # The summary reaches MLflow through the catalog's classifier_mlflow_metrics dataset.
    logged = {k for k in run.data.metrics if k.startswith("test/")}
    assert logged == {
        f"test/{modality}/{key}"
        for modality in models
        for key in ("accuracy", "macro_precision", "macro_recall", "macro_f1")
    }
    (f1,) = client.get_metric_history(run.info.run_id, "test/multimodal/macro_f1")
    assert (f1.step, f1.value) == (0, models["multimodal"]["macro_f1"])
    history = client.get_metric_history(run.info.run_id, "classifier_image/val_accuracy")
    assert len(history) == 2
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "figures/classifier")}
    assert "figures/classifier/classifier_confusion.png" in artifacts
