import pandas as pd
import pytest
import torch
import yaml

from fashiongan.pipelines.train_evaluator.nodes import (
    confusion_figure,
    evaluate_evaluator,
    train_evaluator,
)
from tests.conftest import REPO_ROOT, draw_items

REPO_PARAMS = "conf/base/parameters_train_evaluator.yml"


def tiny_input(n_train: int = 120, n_val: int = 30, n_test: int = 40) -> dict[str, torch.Tensor]:
    out = {}
    for offset, (split, n) in enumerate(
        [("train", n_train), ("validation", n_val), ("test", n_test)]
    ):
        labels = torch.arange(n) % 10
        images = torch.from_numpy(draw_items(labels.numpy(), seed=offset)).float()
        out[f"{split}_images"] = images[:, None] / 127.5 - 1
        out[f"{split}_labels"] = labels
    return out


@pytest.fixture
def training(tiny_evaluator_params):
    base = yaml.safe_load((REPO_ROOT / REPO_PARAMS).read_text())["evaluator"]["training"]
    tiny = tiny_evaluator_params["evaluator"]["training"]
    return {**base, **tiny, "model": {**base["model"], **tiny["model"]}, "device": "cpu"}


def test_training_is_deterministic_for_a_seed(training):
    data = tiny_input()
    training = {**training, "epochs": 1, "num_threads": 1}
    threads = torch.get_num_threads()
    first, history_a = train_evaluator(data, training)
    assert torch.get_num_threads() == threads, "num_threads must not leak out of the node"
    second, history_b = train_evaluator(data, training)
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    pd.testing.assert_frame_equal(
        history_a.drop(columns="elapsed_s"), history_b.drop(columns="elapsed_s")
    )
    third, _ = train_evaluator(data, {**training, "seed": training["seed"] + 1})
    assert not torch.equal(third.head[1].weight, first.head[1].weight)


def test_selects_the_epoch_with_the_best_validation_accuracy(training):
    data = tiny_input()
    model, history = train_evaluator(data, {**training, "epochs": 3})
    assert list(history["step"]) == [1, 2, 3]
    _, predicted = model.predict(data["validation_images"])
    accuracy = (predicted == data["validation_labels"]).double().mean().item()
    assert accuracy == pytest.approx(history["val_accuracy"].max())
    assert not model.training


def test_evaluation_reports_per_class_accuracy(training):
    data = tiny_input()
    model, history = train_evaluator(data, training)
    names = [f"class {i}" for i in range(10)]
    metrics, confusion = evaluate_evaluator(model, data, history, names)
    assert confusion.shape == (10, 10) and confusion.sum() == 40
    assert metrics["test_accuracy"] == pytest.approx(confusion.diagonal().sum().item() / 40)
    per_class = metrics["per_class_test_accuracy"]
    assert list(per_class) == names
    assert sum(per_class.values()) / 10 == pytest.approx(metrics["test_accuracy"])  # balanced
    figure = confusion_figure(confusion, names)
    assert len(figure.axes[0].texts) == int((confusion > 0).sum())
