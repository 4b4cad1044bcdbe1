import pytest
import torch
import yaml

from fashiongan.config import EvaluatorTraining, load_parameters, overridden
from tests.conftest import REPO_ROOT, draw_items

#: Overrides that train the evaluator in seconds on the tiny drawn data.
TINY_EVALUATOR = {
    "evaluator": {
        "training": {
            "epochs": 2,
            "batch_size": 32,
            "lr": 0.01,
            "eval_batch_size": 64,
            "model": {"channels": [8, 16, 16], "convs_per_block": [1, 1, 1], "feature_dim": 32},
        }
    }
}


def tiny_input(n_train: int = 120, n_val: int = 30, n_test: int = 40) -> dict[str, torch.Tensor]:
    """Drawn items of every split in [-1, 1], ten classes in turn."""
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
def tiny_evaluator_params() -> dict:
    return yaml.safe_load(yaml.safe_dump(TINY_EVALUATOR))  # a fresh deep copy


@pytest.fixture
def training(tiny_evaluator_params) -> EvaluatorTraining:
    """The repository's ``evaluator.training`` with the tiny overrides: CPU, no checkpoints."""
    params = load_parameters(REPO_ROOT / "conf")["evaluator"].training
    tiny = tiny_evaluator_params["evaluator"]["training"]
    flat = {k: v for k, v in tiny.items() if k != "model"}
    flat |= {f"model__{k}": v for k, v in tiny["model"].items()}
    return overridden(params, device="cpu", checkpoint_dir=None, **flat)


@pytest.fixture
def evaluator_project(kedro_project, tiny_evaluator_params):
    """The shared temp project with the evaluator shrunk via conf/local."""
    path = kedro_project / "conf" / "local" / "parameters_train_evaluator.yml"
    path.write_text(yaml.safe_dump(tiny_evaluator_params))
    return kedro_project
