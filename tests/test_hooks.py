"""`kedro run` with a bad parameter: one line, exit 2, in seconds, before any data or MLflow run."""

from __future__ import annotations

import pytest

from tests.conftest import kedro_run_failure

CASES = [
    (
        ["--namespaces=baseline", "--params", "baseline.training.iteratons=5"],
        "baseline.training.iteratons: unknown key; did you mean `iterations`?",
    ),
    (
        ["--namespaces=conditional", "--params", "conditional.training.loss=foo"],
        "conditional.training.loss: input should be 'bce', 'wgan-gp' or 'hinge', got 'foo'",
    ),
    (
        ["--namespaces=baseline", "--params", "baseline.training.batch_size=0"],
        "baseline.training.batch_size: input should be greater than or equal to 1, got 0",
    ),
]


@pytest.mark.slow
def test_bad_parameters_fail_in_one_line_before_any_work(kedro_project):
    for args, expected in CASES:
        line = kedro_run_failure(kedro_project, "--pipelines=train_gan", *args)
        assert line == f"Error: bad parameter: {expected}"
        assert not (kedro_project / "data" / "05_model_input").exists()  # nothing ran
    assert not list((kedro_project / "data").rglob("*.safetensors"))
