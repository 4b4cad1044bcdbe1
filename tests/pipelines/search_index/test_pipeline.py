import json

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image

from fashiongan.config import load_parameters, overridden
from fashiongan.datasets import TensorDictDataset
from fashiongan.datasets.faiss_index import read_index
from fashiongan.pipelines.search_index.nodes import (
    collect_catalog,
    embed_catalog,
    evaluate_search,
)
from fashiongan.pixels import from_uint8
from fashiongan.search.index import build_index, describe, search
from tests.conftest import make_kedro_project, run_pipeline
from tests.search.conftest import CLASS_NAMES, planted_models, tiny_items, tiny_models

N_TEST = 40


def write_search_inputs(project) -> None:
    """Tiny trained-model stand-ins and the catalog inputs, where the catalog expects them."""
    tiny_models(project / "models")
    table, pixels = tiny_items(N_TEST)
    images = pixels.float() / 127.5 - 1.0
    labels = torch.tensor(table["label"].to_numpy())
    TensorDictDataset(filepath=str(project / "data/05_model_input/fashion_mnist.safetensors")).save(
        {
            "train_images": images[:10].clone(),
            "train_labels": labels[:10].clone(),
            "validation_images": images[:0].clone(),  # the catalog's contract names every split
            "validation_labels": labels[:0].clone(),
            "test_images": images,
            "test_labels": labels,
        }
    )
    captions = pd.DataFrame(
        {
            "split": "test",
            "index": range(N_TEST),
            "label": table["label"],
            "tone": 0,
            "fit": 0,
            "pattern": 0,
            "caption": table["title"],
        }
    )
    path = project / "data/04_feature/fashion_mnist_captions.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    captions.to_parquet(path)


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    """One real KedroSession run of search_index on tiny models and a 40-item catalog."""
    monkeypatch = pytest.MonkeyPatch()
    project = make_kedro_project(tmp_path_factory.mktemp("search_index"), monkeypatch)
    write_search_inputs(project)
    overrides = {
        "search_index": {
            "index": {"exact_max": 30, "nprobe": 2},  # 40 items > 30: the IVF path
            "evaluation": {
                "k": 3,  # 4 items per class: 3 others can be found for each
                "n_queries": 6,
                "n_images": 2,
                "examples": ["trainers", "a purse"],
            },
        }
    }
    (project / "conf/local/parameters_search_index.yml").write_text(yaml.safe_dump(overrides))
    run_pipeline(project, ["search_index"])
    yield project
    monkeypatch.undo()


def test_pipeline_writes_catalog_vectors_index_and_report(indexed):
    out = indexed / "data/07_model_output/search/default"
    table = pd.read_parquet(out / "catalog.parquet")
    assert len(table) == N_TEST and table["id"].is_unique
    assert table.loc[7, "category"] == "Sneaker" and table.loc[7, "title"] == "a plain sneaker"
    vectors = TensorDictDataset(filepath=str(out / "vectors.safetensors")).load()["vectors"]
    assert vectors.shape == (N_TEST, 8)
    torch.testing.assert_close(vectors.norm(dim=1), torch.ones(N_TEST))
    index = read_index(out / "index.faiss")
    assert describe(index)["kind"] == "ivf" and describe(index)["nprobe"] == 2
    _, rows = search(index, vectors[:3].numpy(), 1)
    assert rows[:, 0].tolist() == [0, 1, 2]

    metrics = json.loads(
        (indexed / "data/08_reporting/search_index/default/metrics.json").read_text()
    )
    assert metrics["n_queries"] == 6 and metrics["index"]["ntotal"] == N_TEST
    assert metrics["intent_class_accuracy"] == 1.0  # titles name their class
    assert metrics["chance_class_precision_at_3"] == pytest.approx(0.1)
    # Even the untrained tiny embedder keeps items of a class together: image queries (the
    # item's own vector, itself left out) find the class far above chance.
    assert metrics["image_class_precision_at_3"] >= 0.5
    # The untrained generator draws noise, so its text precision says nothing of relevance
    # (test_search_evaluation_measures_relevance plants generators for that); it is still the
    # share of 3 hits over 6 queries, a whole number of 18ths (rounded to 4 places).
    eighteenths = metrics["text_class_precision_at_3"] * 18
    assert eighteenths == pytest.approx(round(eighteenths), abs=18 * 5e-5)
    assert (indexed / "reports/figures/search_index/search_examples.png").stat().st_size > 5000


def test_summary_metrics_reach_mlflow_through_the_dataset(indexed):
    """search_mlflow_metrics: the rates as ``search/<name>`` at step 0, no counts."""
    metrics = json.loads(
        (indexed / "data/08_reporting/search_index/default/metrics.json").read_text()
    )
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{indexed / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("fashiongan").experiment_id])
    logged = {k: v for k, v in run.data.metrics.items() if k.startswith("search/")}
    assert logged == {
        f"search/{key}": value for key, value in metrics.items() if isinstance(value, float)
    }
    assert {"search/intent_class_accuracy", "search/query_latency_ms_median"} <= set(logged)
    (accuracy,) = client.get_metric_history(run.info.run_id, "search/intent_class_accuracy")
    assert (accuracy.step, accuracy.value) == (0, 1.0)


def test_service_loads_from_the_project_catalog(indexed):
    from fashiongan.search.loading import load_service

    service, settings = load_service(indexed / "conf")
    assert settings.port == 7860 and settings.host == "127.0.0.1"
    assert service.model_names == ["conditional", "baseline"]  # no VAE here: skipped
    # The fused ranking's title vectors come from the pipeline, not from an encode at start-up.
    stored = TensorDictDataset(
        filepath=str(indexed / "data/07_model_output/search/default/title_vectors.safetensors")
    ).load()["vectors"]
    title_vectors = service.ranker.title_vectors
    assert title_vectors is not None and title_vectors.shape[0] == N_TEST
    torch.testing.assert_close(title_vectors, stored)
    table = service.catalog.table["title"].astype(str).tolist()
    torch.testing.assert_close(stored[:3], service.encoder.encode(table[:3]).float())
    result = service.search("white trainers", k=3)
    assert result.intent.label == 7 and len(result.hits) == 3


def test_folder_catalog_reads_csv_and_skips_unreadable_pictures(tmp_path):
    folder = tmp_path / "products"
    folder.mkdir()
    Image.new("RGB", (60, 80), (200, 10, 10)).save(folder / "p1.png")
    Image.new("RGBA", (30, 30), (0, 0, 255, 128)).save(folder / "shoe.png")
    (folder / "p3.jpg").write_bytes(b"not a picture")
    pd.DataFrame(
        {
            "id": ["p1", "p2", "p3"],
            "title": ["red dress", "blue sneaker", "broken"],
            "category": ["Dress", "sneaker", "Hats"],
            "image": ["", "shoe.png", ""],
        }
    ).to_csv(folder / "products.csv", index=False)
    embedder = tiny_models(tmp_path / "models")["embedder"]
    from fashiongan.datasets.safetensors import load_module

    module = load_module(embedder)
    source = overridden(
        load_parameters()["search_index"].source,
        kind="folder",
        images_dir=str(folder),
        csv=str(folder / "products.csv"),
    )
    table, thumbnails = collect_catalog({}, pd.DataFrame(), module, CLASS_NAMES, source)
    assert table["id"].tolist() == ["p1", "p2"] and table["label"].tolist() == [3, 7]
    assert table.loc[1, "image"].endswith("shoe.png")
    assert thumbnails["images"].shape == (2, 1, 28, 28)
    assert thumbnails["images"].dtype == torch.uint8
    vectors = embed_catalog(thumbnails, module, batch_size=1)["vectors"]
    assert vectors.shape == (2, 8) and np.isfinite(vectors.numpy()).all()


def test_a_bad_catalog_source_is_refused_before_the_run():
    from fashiongan.config import ConfigError, parse_block

    values = load_parameters()["search_index"].model_dump()
    values["source"]["kind"] = "s3"
    with pytest.raises(ConfigError, match=r"search_index\.source\.kind: input should be"):
        parse_block("search_index", values)


def _evaluate_planted(shift: int) -> dict:
    """evaluate_search over the 60-item catalog with a generator drawing the asked class
    (``shift`` 1: the next class, a generator that gets every request wrong)."""
    table, pixels = tiny_items()
    generator, embedder = planted_models()
    generator.shift = shift
    with torch.no_grad():
        vectors = {"vectors": embedder(from_uint8(pixels))}
    params = overridden(
        load_parameters()["search_index"].evaluation, k=5, n_queries=30, examples=("a bag",)
    )
    index = build_index(vectors["vectors"].numpy())
    query = load_parameters()["search_app"].query
    metrics, plots = evaluate_search(
        generator, embedder, index, table, {"images": pixels}, vectors, {}, params, query
    )
    assert list(plots) == ["search_examples.png"]
    return metrics


def test_search_evaluation_measures_relevance():
    """Text precision is 1 when the generator draws what was asked and 0 when it draws the next
    class; chance is the class share (0.1), whatever the generator."""
    right, wrong = _evaluate_planted(0), _evaluate_planted(1)
    assert right["text_class_precision_at_5"] == 1.0
    assert wrong["text_class_precision_at_5"] == 0.0
    for metrics in (right, wrong):
        assert metrics["n_queries"] == 30 and metrics["intent_class_accuracy"] == 1.0
        assert metrics["chance_class_precision_at_5"] == pytest.approx(0.1)
        assert metrics["image_class_precision_at_5"] > 3 * 0.1
