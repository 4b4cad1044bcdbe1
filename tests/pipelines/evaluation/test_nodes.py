"""Node functions of the evaluation pipeline on the tiny project: lazy partitions, typed
parameters, figures once, and the report. The scoring itself is tested in tests/evaluation/."""

import re

import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure
from tests.evaluation.tiny import evaluation_params

from fashiongan.datasets import OptionalPartitionedDataset, TensorDictDataset, TorchModelDataset
from fashiongan.pipelines.evaluation.nodes import (
    compile_report,
    evaluate_retrieval,
    materialise,
    plot_evaluation,
    sample_models,
    score_inception,
    score_models,
    write_report,
)
from fashiongan.pipelines.evaluation.report import (
    data_checksum,
    markdown,
    mlflow_metrics,
    row_summary,
    verdict_sentence,
)

PARAMS = evaluation_params()
CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat"] + ["Other"] * 5


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
        path = project / f"models/{name}/default/{stem}.safetensors"
        return TorchModelDataset(filepath=str(path)).load

    return {
        "project": project,
        "model_input": model_input,
        "attributes": attributes,
        "captions": captions,
        "model": model,
    }


def _never(name: str):
    def load():
        raise AssertionError(f"{name} should not be loaded")

    return load


@pytest.fixture(scope="module")
def samples(data):
    generators = {name: data["model"](name) for name in ("baseline", "conditional", "vae")}
    return sample_models(generators, data["model_input"], data["captions"], PARAMS)


def test_partitioned_datasets_name_variants_by_family_and_folder(data):
    project = data["project"]
    generators = OptionalPartitionedDataset(
        path=str(project / "models"),
        dataset="fashiongan.datasets.TorchModelDataset",
        filename_suffix="/generator.safetensors",
    ).load()
    assert set(generators) == {"baseline/default", "conditional/default", "vae/default"}
    empty = OptionalPartitionedDataset(
        path=str(project / "models"),
        dataset="fashiongan.datasets.TorchModelDataset",
        filename_suffix="/no_such.safetensors",
    ).load()
    assert empty == {}


def test_materialise_loads_the_named_partitions_sorted():
    partitions = {"b": lambda: 2, "a": 1, "c": _never("c")}
    assert list(materialise({"b": lambda: 2, "a": 1})) == ["a", "b"]
    assert materialise(partitions, ["b", "a", "zzz"]) == {"a": 1, "b": 2}


def test_sample_models_node_loads_only_the_wanted_models(data, samples):
    generators = {"vae": data["model"]("vae"), "baseline": _never("baseline")}
    only_vae = sample_models(
        generators, data["model_input"], data["captions"], evaluation_params(models=["vae"])
    )
    assert list(only_vae) == ["vae"]
    assert torch.equal(only_vae["vae"]["images"], samples["vae"]["images"])  # the same noise
    assert set(samples) == {"baseline", "conditional", "vae"}
    assert samples["conditional"]["text"].shape[0] == len(data["model_input"]["test_labels"])


def test_score_models_node_loads_only_the_sampled_models_partitions(data, samples):
    discriminators = {
        "baseline": data["model"]("baseline", "discriminator"),
        "conditional": data["model"]("conditional", "discriminator"),
        "unsampled": _never("unsampled discriminator"),
    }
    history = pd.DataFrame({"step": [10, 20], "d_loss": [1.0, 0.7], "g_loss": [1.0, 1.2]})
    histories = {"baseline": lambda: history, "evaluator": _never("evaluator history")}
    metrics = score_models(
        samples, discriminators, histories, data["model"]("evaluator", "evaluator")(),
        data["model_input"], data["captions"], data["attributes"], PARAMS,
    )  # fmt: skip
    models = metrics["models"]
    assert set(models) == {"baseline", "conditional", "vae"}
    assert models["baseline"]["training"] == {"final_d_loss": 0.7, "final_g_loss": 1.2}
    assert "accuracy" in models["conditional"]["discriminator"]
    assert "discriminator" not in models["vae"]
    assert metrics["settings"]["n_samples"] == 50 and {"floor", "noise"} <= set(metrics)


def test_score_inception_node_skips_without_loading_samples(data):
    out = score_inception({"baseline": _never("samples")}, data["model_input"], PARAMS)
    assert out == {"enabled": False, "note": "inception.enabled is false"}


def test_evaluate_retrieval_node_needs_a_conditional_model_with_an_embedder(data):
    generators = {name: data["model"](name) for name in ("baseline", "conditional")}
    out, figures = evaluate_retrieval(generators, {}, data["model_input"], data["captions"], PARAMS)
    assert "no conditional model with an embedder" in out["note"] and figures == {}
    embedders = {"baseline": data["model"]("conditional", "embedder")}  # not conditional: skipped
    out, figures = evaluate_retrieval(
        generators, embedders, data["model_input"], data["captions"], PARAMS
    )
    assert out["models"] == {} and figures == {} and out["settings"]["n_queries"] == 12


def test_plot_evaluation_returns_each_figure_once(data, samples):
    metrics = score_models(
        samples, {}, {}, data["model"]("evaluator", "evaluator")(), data["model_input"],
        data["captions"], data["attributes"], PARAMS,
    )  # fmt: skip
    history = pd.DataFrame({"step": [1, 2], "d_loss": [1.0, 0.5], "g_loss": [2.0, 1.5]})
    retrieval_figure = Figure()
    plots = plot_evaluation(
        {name: data["model"](name) for name in ("baseline", "conditional", "vae")},
        samples, {"baseline": history}, data["model"]("evaluator", "evaluator")(), metrics,
        {"conditional_retrieval_examples.png": retrieval_figure}, CLASS_NAMES, PARAMS,
    )  # fmt: skip
    assert isinstance(plots, dict) and all(isinstance(f, Figure) for f in plots.values())
    expected = {
        f"{m}_{kind}.png"
        for m in ("baseline", "conditional", "vae")
        for kind in ("class_samples", "interpolation", "confusion")
    }
    expected |= {"baseline_loss_curves.png", "conditional_noise_variation.png"}
    assert set(plots) == expected | {"conditional_retrieval_examples.png"}
    assert plots["conditional_retrieval_examples.png"] is retrieval_figure


def test_verdict_sentence_and_row_summary_say_when_synthetic_does_not_win():
    def scores(r10, m):
        return {"overall": {"recall_at_10": r10, "map_at_100": m}, "per_class": {}}

    model = {
        "text": {"text": scores(0.5, 0.2), "synthetic": scores(0.6, 0.3)},
        "composed": {"image": scores(0.5, 0.4), "synthetic": scores(0.6, 0.3)},
        "verdict": {"criterion": "c"},
    }
    verdict = {
        "criterion": "recall_at_10 and map_at_100 above every baseline",
        "text_synthetic_beats_baselines": True,
        "text_not_beaten_by_synthetic": [],
        "text_fused_beats_baselines": True,
        "composed_synthetic_beats_baselines": False,
        "composed_not_beaten_by_synthetic": ["image"],
        "composed_fused_beats_baselines": False,
    }
    sentence = verdict_sentence("conditional", verdict)
    assert "**does not beat** the image-only and text-only baselines (not above: image)" in sentence
    assert "on text queries the synthetic query **beats**" in sentence
    assert "fused (synthetic + text) query beats them on text queries" in sentence
    summary = row_summary({"fid": 1.0, "kid": 0.1}, None, model)
    assert summary["retrieval_composed_synthetic_recall_at_10"] == 0.6
    assert summary["fid_evaluator"] == 1.0 and summary["precision"] is None
    assert not any(key.startswith("retrieval_verdict") for key in summary)


def _comparison_inputs():
    row = {"fid": 1.0, "kid": 0.001, "precision": 0.5, "recall": 0.5, "density": 1.0,
           "coverage": 0.5}  # fmt: skip
    settings = {
        "extractor": "evaluator CNN", "n_samples": 50, "reference": "test",
        "kid_subset_size": 50, "prdc_k": 5, "evaluator_test_accuracy": 0.9,
    }  # fmt: skip
    model_metrics = {"settings": settings, "models": {"baseline": row}, "floor": row, "noise": row}
    return model_metrics, {"enabled": False, "note": "off"}, {"note": "no retrieval"}


def test_markdown_has_a_row_a_model_and_the_reference_rows():
    model_metrics, inception, retrieval = _comparison_inputs()
    metrics, _, logged = compile_report(model_metrics, inception, retrieval, {})
    text = write_report(metrics, model_metrics, retrieval, {}, CLASS_NAMES)
    assert "| **baseline** |" in text and "| real train vs test (floor) |" in text
    assert "| uniform noise |" in text and "N = 50" in text and "no retrieval" in text
    assert "| **baseline** | 1.00 | 1.00 | 0.500 | 0.500 | 1.000 | 0.500 | — |" in text
    assert "Inception FID not computed: off" in text and "No model has a discriminator." in text
    assert "No registered model was scored" in text
    assert text.endswith("no retrieval\n")
    assert text == markdown(metrics, model_metrics, retrieval, {}, CLASS_NAMES)
    assert logged["baseline/fid_evaluator"] == {"value": 1.0, "step": 0}
    assert "baseline/fid_inception" not in logged  # None: not a metric


def test_summary_metrics_keys_are_ones_mlflow_accepts():
    metrics = {
        "rows": {"fashiongan-conditional@champion": {"fid_evaluator": 2.0, "x": float("nan")}}
    }
    assert mlflow_metrics(metrics) == {
        "fashiongan-conditional_champion/fid_evaluator": {"value": 2.0, "step": 0}
    }


def test_the_report_names_each_champion_and_the_rule():
    model_metrics, inception, retrieval = _comparison_inputs()
    metrics, _, _ = compile_report(model_metrics, inception, retrieval, {})
    decision = {"champion": "3", "previous": "1", "model": "baseline/default",
                "fid_evaluator": 1.0, "conditional_accuracy": None, "smoke": False}  # fmt: skip
    champions = {"rule": "lowest evaluator FID", "families": {"baseline": decision}}
    text = write_report(metrics, model_metrics, retrieval, champions, CLASS_NAMES)
    assert "Alias `champion` in each family: lowest evaluator FID." in text
    assert "| fashiongan-baseline | 3 | 1 | baseline/default | 1.00 | — | no |" in text


def test_data_checksum_changes_with_the_data(data):
    model_input = data["model_input"]
    first = data_checksum(model_input)
    changed = {**model_input, "test_labels": model_input["test_labels"].flip(0)}
    assert first == data_checksum(dict(model_input)) and first != data_checksum(changed)
    assert re.fullmatch(r"[0-9a-f]{64}", first)
