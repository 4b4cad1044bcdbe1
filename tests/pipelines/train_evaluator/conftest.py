import pytest
import yaml

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


@pytest.fixture
def tiny_evaluator_params() -> dict:
    return yaml.safe_load(yaml.safe_dump(TINY_EVALUATOR))  # a fresh deep copy


@pytest.fixture
def evaluator_project(kedro_project, tiny_evaluator_params):
    """The shared temp project with the evaluator shrunk via conf/local."""
    path = kedro_project / "conf" / "local" / "parameters_train_evaluator.yml"
    path.write_text(yaml.safe_dump(tiny_evaluator_params))
    return kedro_project
