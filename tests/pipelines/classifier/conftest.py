"""Tiny classifier settings for end-to-end runs on the conftest's drawn data."""

import pytest
import yaml

TINY_CLASSIFIER = {
    "classifier": {
        "training": {
            "epochs": 2,
            "batch_size": 32,
            "model": {
                "cnn_channels": [4, 8, 8],
                "embedding_dim": 8,
                "lstm_hidden": 8,
                "fusion_hidden": 16,
            },
        },
        "report": {"examples_per_kind": 1},
    }
}


@pytest.fixture
def tiny_classifier(kedro_project):
    """The temp Kedro project with classifier training shrunk to seconds."""
    path = kedro_project / "conf" / "local" / "parameters_classifier.yml"
    path.write_text(yaml.safe_dump(TINY_CLASSIFIER))
    return kedro_project
