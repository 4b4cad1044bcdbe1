"""Scoring samples with the evaluator and discriminators, with known answers."""

import math

import pandas as pd
import pytest
import torch

from fashiongan.evaluation.metrics import frechet_distance
from fashiongan.evaluation.sampling import sample_models
from fashiongan.evaluation.scoring import (
    attribute_accuracy,
    final_losses,
    json_safe,
    reference_images,
    score_models,
)
from tests.evaluation.tiny import evaluation_params

PARAMS = evaluation_params()


def _score(tiny, samples, discriminators=None, histories=None, params=PARAMS):
    return score_models(
        samples, discriminators or {}, histories or {}, tiny["modules"]["evaluator"]["evaluator"],
        tiny["model_input"], tiny["captions"], tiny["attributes"], params, "cpu",
    )  # fmt: skip


def test_score_models_known_answers_for_real_test_images(tiny, perfect_samples):
    test = tiny["model_input"]["test_images"]
    shifted = dict(perfect_samples["perfect"], images=test.roll(4, dims=-1))
    metrics = _score(tiny, {**perfect_samples, "shifted": shifted})
    perfect, floor, noise = metrics["models"]["perfect"], metrics["floor"], metrics["noise"]
    assert perfect["fid"] == pytest.approx(0.0, abs=1e-3)  # same images as the reference
    # A set that differs: the FID of the evaluator's features of the test items and of it
    # (frechet_distance itself: test_metrics' closed forms).
    features = tiny["modules"]["evaluator"]["evaluator"].eval().features
    with torch.no_grad():
        expected = frechet_distance(features(test), features(shifted["images"]))
    assert metrics["models"]["shifted"]["fid"] == pytest.approx(
        expected, abs=1e-6
    )  # JSON: 6 decimals
    assert expected > 1e-3
    assert perfect["precision"] == perfect["recall"] == perfect["coverage"] == 1.0
    # conditional accuracy of real items = the evaluator's own accuracy (= the floor row's)
    assert perfect["conditional_accuracy"]["overall"] == pytest.approx(
        metrics["settings"]["evaluator_test_accuracy"]
    )
    assert perfect["conditional_accuracy"] == floor["conditional_accuracy"]
    assert perfect["attribute_accuracy"]["mean"] == 1.0  # the captions describe these images
    assert floor["fid"] < noise["fid"]
    assert sum(perfect["confusion"][i][j] for i in range(10) for j in range(10)) == 50
    assert set(perfect) >= {"kid", "kid_std", "density", "predicted_class_share"}
    assert "n_real" not in perfect  # N is in the settings
    assert metrics["settings"]["n_samples"] == 50 and metrics["settings"]["kid_subset_size"] == 50


def test_score_models_with_discriminators_and_histories(tiny):
    names = ("baseline", "conditional", "vae")
    generators = {name: tiny["modules"][name]["generator"] for name in names}
    labels = tiny["model_input"]["test_labels"]
    samples = sample_models(generators, labels, tiny["captions"], None, 0, 32, "cpu")
    discriminators = {n: tiny["modules"][n]["discriminator"] for n in ("baseline", "conditional")}
    history = pd.DataFrame({"step": [1, 2], "d_loss": [1.0, 0.5], "g_loss": [2.0, 1.5]})
    metrics = _score(tiny, samples, discriminators, {"baseline": history})
    models = metrics["models"]
    assert models["baseline"]["discriminator"]["loss"] == "bce"
    assert models["conditional"]["discriminator"]["loss"] == "hinge"
    for name in ("baseline", "conditional"):
        d = models[name]["discriminator"]
        assert d["tp"] + d["fn"] == 50 and d["fp"] + d["tn"] == 50
        assert 0 <= d["floor"]["accuracy"] <= 1 and 0 <= d["noise"]["accuracy"] <= 1
    assert "discriminator" not in models["vae"]
    assert models["baseline"]["training"] == {"final_d_loss": 0.5, "final_g_loss": 1.5}
    assert models["conditional"]["conditional"] and not models["vae"]["conditional"]
    assert "confusion" in models["conditional"] and "confusion" not in models["baseline"]


def test_score_models_refuses_samples_of_other_items(tiny, perfect_samples):
    other = dict(perfect_samples["perfect"], index=perfect_samples["perfect"]["index"].flip(0))
    with pytest.raises(ValueError, match="other test items"):
        _score(tiny, {"perfect": perfect_samples["perfect"], "other": other})


def test_reference_images_are_seeded_real_training_items_and_noise(tiny):
    model_input = tiny["model_input"]
    references = reference_images(model_input, 20, seed=0)
    assert torch.equal(
        references.images["floor"], model_input["train_images"][references.train_index]
    )
    noise = references.images["noise"]
    assert noise.shape == (20, 1, 28, 28) and noise.min() >= -1 and noise.max() <= 1
    again = reference_images(model_input, 20, seed=0)
    assert torch.equal(again.images["noise"], noise)
    assert not torch.equal(reference_images(model_input, 20, seed=1).images["noise"], noise)


def test_attribute_accuracy_counts_only_what_was_asked(tiny):
    model_input, attributes = tiny["model_input"], tiny["attributes"]
    images, labels = model_input["test_images"], model_input["test_labels"]
    asked = {name: attributes[f"test_{name}"].clone() for name in ("tone", "fit", "pattern")}
    asked["fit"][:] = -1
    asked["pattern"] = 1 - asked["pattern"]  # always the opposite
    out = attribute_accuracy(images, labels, asked, attributes)
    assert out["tone"] == 1.0 and out["pattern"] == 0.0 and math.isnan(out["fit"])
    assert out["n_fit"] == 0 and out["mean"] == 0.5


def test_json_safe_and_final_losses():
    value = {1: [float("nan"), 0.1234567891, (float("inf"), 2)], "s": "x"}
    assert json_safe(value) == {"1": [None, 0.123457, [None, 2]], "s": "x"}
    history = pd.DataFrame({"step": [1, 2], "d_loss": [1.0, 0.25]})
    assert final_losses(history) == {"final_d_loss": 0.25}
