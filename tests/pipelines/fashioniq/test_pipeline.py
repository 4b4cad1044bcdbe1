import json

import mlflow
import pandas as pd
import pytest
import yaml

from fashiongan.datasets import TensorDictDataset, TorchModelDataset
from fashiongan.fashioniq_files import FashionIQDataMissingError
from fashiongan.models.conditional_gan import ConditionalGenerator, ImageEmbedder
from tests.conftest import make_kedro_project, run_pipeline
from tests.pipelines.fashioniq.conftest import (
    EXPECTED_IDENTITY,
    EXPECTED_IMAGES,
    EXPECTED_PAIRS,
    EXPECTED_TRAIN_PAIRS,
    EXPECTED_VAL_PAIRS,
    write_fashioniq_fixture,
)
from tests.pipelines.fashioniq.test_training import TINY_TRAINING

TINY = {
    "fashioniq": {
        "data": {"workers": 2},
        "text_encoder": {"device": "cpu"},
        "sample_captions": ["is black", "is red"],
        "training": {
            "device": "cpu",
            "epochs": 2,
            "batch_size": 8,
            "log_every": 1,
            "sample_columns": 2,
            "model": TINY_TRAINING["model"],
            "embedding": TINY_TRAINING["embedding"],
        },
        # K below the galleries' 7–8 items, so a ranking can miss (at K ≥ 8 every one hits)
        "evaluation": {
            "device": "cpu",
            "ks": [1, 5],
            "n_samples": 2,
            "n_examples": 3,
            "example_columns": 3,
        },
    }
}
METHODS = ("image", "text", "synthetic", "fused")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """One real KedroSession run of ``fashioniq`` on the official-format fixture."""
    monkeypatch = pytest.MonkeyPatch()
    project = make_kedro_project(tmp_path_factory.mktemp("fashioniq"), monkeypatch)
    write_fashioniq_fixture(project / "data/01_raw/fashioniq")
    (project / "conf/local/parameters_fashioniq.yml").write_text(yaml.safe_dump(TINY))
    run_pipeline(project, ["fashioniq"])
    yield project
    monkeypatch.undo()


def test_ingestion_report_and_tables(project):
    report = json.loads((project / "data/08_reporting/fashioniq/ingestion.json").read_text())
    assert report["images"] == EXPECTED_IMAGES and report["pairs"] == EXPECTED_PAIRS
    assert report["image_size"] == 64 and report["channels"] == 3
    pictures = TensorDictDataset(
        filepath=str(project / "data/05_model_input/fashioniq/images.safetensors")
    ).load()["images"]
    assert pictures.shape == (EXPECTED_IMAGES["loaded"], 3, 64, 64)
    pairs = pd.read_parquet(project / "data/05_model_input/fashioniq/pairs.parquet")
    assert len(pairs) == EXPECTED_TRAIN_PAIRS + EXPECTED_VAL_PAIRS
    items = pd.read_parquet(project / "data/04_feature/fashioniq/training_items.parquet")
    assert len(items) == EXPECTED_TRAIN_PAIRS + EXPECTED_IDENTITY


def test_trained_models_at_64x64_rgb(project):
    generator = TorchModelDataset(
        filepath=str(project / "models/fashioniq/default/generator.safetensors")
    ).load()
    embedder = TorchModelDataset(
        filepath=str(project / "models/fashioniq/default/embedder.safetensors")
    ).load()
    assert isinstance(generator, ConditionalGenerator) and isinstance(embedder, ImageEmbedder)
    assert (generator.config.image_size, generator.config.channels) == (64, 3)
    assert generator.config.stages == 4 and generator.config.text_dim == 384
    history = pd.read_csv(project / "data/08_reporting/fashioniq/default/training_history.csv")
    assert list(history["step"]) == [1, 2, 3, 4, 5, 6]  # 25 items // 8 = 3 steps × 2 epochs


def test_official_recall_for_every_query_kind(project):
    metrics = json.loads((project / "data/08_reporting/fashioniq/default/metrics.json").read_text())
    assert metrics["split"] == "val" and metrics["ks"] == [1, 5]
    sizes = {"dress": 8, "shirt": 7, "toptee": 8}
    assert metrics["gallery_size"] == sizes
    assert set(metrics["methods"]) == set(METHODS)
    rankings = pd.read_parquet(project / "data/07_model_output/fashioniq/default/rankings.parquet")
    assert len(rankings) == len(METHODS) * EXPECTED_VAL_PAIRS
    assert (rankings["target_rank"] < rankings["gallery_size"]).all()
    assert rankings["top"].map(len).max() == 5  # the first max(ks) gallery items
    queries = {"dress": 5, "shirt": 3, "toptee": 4}
    for method in METHODS:
        table = metrics["methods"][method]
        assert {c: table[c]["queries"] for c in queries} == queries
        ranked = rankings[rankings["method"] == method]
        for k in (1, 5):  # Recall@K = share of queries whose target ranks in the first K
            hits = (ranked["target_rank"] < k).groupby(ranked["category"]).mean()
            for category in queries:
                assert table[category][f"recall_at_{k}"] == pytest.approx(hits[category])
            average = sum(hits[c] for c in queries) / len(queries)
            assert table["average"][f"recall_at_{k}"] == pytest.approx(average)
    chance = metrics["chance"]
    assert chance["shirt"] == {"recall_at_1": 1 / 7, "recall_at_5": 5 / 7}
    assert chance["average"]["recall_at_1"] == pytest.approx((1 / 8 + 1 / 7 + 1 / 8) / 3)

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("fashiongan")
    (run,) = client.search_runs([experiment.experiment_id])
    fused = metrics["methods"]["fused"]["average"]["recall_at_5"]
    assert run.data.metrics["fashioniq/eval/fused/average/recall_at_5"] == pytest.approx(fused)
    assert "fashioniq/d_loss" in run.data.metrics
    # The summaries reach MLflow through the catalog's metric datasets: fashioniq.mlflow_metrics
    # (Recall@K at step 0) and the training template's fashioniq.training_mlflow_metrics.
    (recall,) = client.get_metric_history(run.info.run_id, "fashioniq/eval/image/dress/recall_at_1")
    assert (recall.step, recall.value) == (0, metrics["methods"]["image"]["dress"]["recall_at_1"])
    assert not any(name.endswith("/queries") for name in run.data.metrics)
    assert {"fashioniq/final_d_loss", "fashioniq/wall_time_s"} <= set(run.data.metrics)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "figures/fashioniq")}
    assert "figures/fashioniq/fashioniq_examples.png" in artifacts


def test_report_and_figures(project):
    report = (project / "reports/fashioniq.md").read_text()
    metrics = json.loads((project / "data/08_reporting/fashioniq/default/metrics.json").read_text())
    assert report.startswith("# FashionIQ")
    assert "| Query | dress R@1 | dress R@5 | shirt R@1 |" in report
    fused = metrics["methods"]["fused"]["dress"]["recall_at_1"]
    assert f"| Fused (synthetic + image) | {100 * fused:.2f} |" in report
    assert "| Chance (K / gallery size) | 12.50 | 62.50 | 14.29 | 71.43 |" in report
    assert "| dress/train | 8 | 6 | 2 | 0 | 0 | 0 |" in report
    assert f"{EXPECTED_IDENTITY} identity items" in report
    for name in ("fashioniq_examples.png", "fashioniq_loss_curves.png"):
        assert (project / "reports/figures/fashioniq" / name).stat().st_size > 1000


def test_without_data_the_first_node_says_what_is_missing(project):
    """Same project (its MLflow store is set up already), the data root pointed elsewhere."""
    elsewhere = {"fashioniq": {"data": {"root": "data/01_raw/elsewhere"}}}
    with pytest.raises(FashionIQDataMissingError) as error:
        run_pipeline(project, ["fashioniq"], runtime_params=elsewhere)
    assert str(error.value).startswith(
        "data/01_raw/elsewhere/captions/cap.dress.train.json not found (and 11 more FashionIQ "
        "files): download captions/ and image_splits/ from https://github.com/XiaoxiaoGuo/"
        "fashion-iq into data/01_raw/elsewhere and put the pictures"
    )
