import pandas as pd
import pytest
import torch

from fashiongan.config import overridden
from fashiongan.pipelines.train_evaluator.nodes import evaluate_evaluator, train_evaluator
from fashiongan.plotting import confusion_figure
from tests.pipelines.train_evaluator.conftest import tiny_input


def test_training_is_deterministic_for_a_seed(training):
    data = tiny_input()
    training = overridden(training, epochs=1, num_threads=1)
    threads = torch.get_num_threads()
    first, history_a = train_evaluator(data, training, "default")
    assert torch.get_num_threads() == threads, "num_threads must not leak out of the node"
    second, history_b = train_evaluator(data, training, "default")
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    pd.testing.assert_frame_equal(
        history_a.drop(columns="elapsed_s"), history_b.drop(columns="elapsed_s")
    )
    third, _ = train_evaluator(data, overridden(training, seed=training.seed + 1), "default")
    assert not torch.equal(third.head[1].weight, first.head[1].weight)


def test_selects_the_epoch_with_the_best_validation_accuracy(training):
    """Validation labels shifted by one class: the better the model learns the training
    items, the worse it scores there, so an early epoch is best and the last is not."""
    data = tiny_input()
    data["validation_labels"] = (data["validation_labels"] + 1) % 10
    model, history = train_evaluator(data, overridden(training, epochs=3), "default")
    assert list(history["epoch"]) == [1, 2, 3]
    assert list(history["step"]) == [3, 6, 9]  # 120 // 32 = 3 steps an epoch
    val = history["val_accuracy"]
    assert val.iloc[-1] < val.max(), f"the last epoch is best ({val.tolist()}): nothing selected"
    _, predicted = model.predict(data["validation_images"])
    accuracy = (predicted == data["validation_labels"]).double().mean().item()
    assert accuracy == pytest.approx(val.max())
    assert not model.training


def test_evaluation_reports_per_class_accuracy(training):
    data = tiny_input()
    model, history = train_evaluator(data, training, "default")
    names = [f"class {i}" for i in range(10)]
    metrics, confusion = evaluate_evaluator(model, data, history, names)
    assert confusion.shape == (10, 10) and confusion.sum() == 40
    assert metrics["test_accuracy"] == pytest.approx(confusion.diagonal().sum().item() / 40)
    per_class = metrics["per_class_test_accuracy"]
    assert list(per_class) == names
    assert sum(per_class.values()) / 10 == pytest.approx(metrics["test_accuracy"])  # balanced
    figure = confusion_figure(confusion, names, "Evaluator")
    assert len(figure.axes[0].texts) == int((confusion > 0).sum())
