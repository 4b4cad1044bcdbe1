import json

import torch

from tests.conftest import run_pipeline


def test_data_processing_end_to_end(kedro_project):
    run_pipeline(kedro_project, ["data_processing"])
    from fashiongan.datasets import TensorDictDataset

    model_input = TensorDictDataset(filepath="data/05_model_input/fashion_mnist.safetensors").load()
    assert model_input["train_images"].shape == (180, 1, 28, 28)
    assert model_input["validation_images"].shape == (20, 1, 28, 28)
    assert model_input["test_images"].shape == (50, 1, 28, 28)
    assert model_input["train_images"].min() >= -1 and model_input["train_images"].max() <= 1
    assert torch.equal(torch.bincount(model_input["validation_labels"]), torch.full((10,), 2))
    summary = json.loads(
        (kedro_project / "data/08_reporting/fashion_mnist_summary.json").read_text()
    )
    assert summary["train_count"] == 180


def test_corrupt_raw_file_keeps_processed_output(kedro_project):
    run_pipeline(kedro_project, ["data_processing"])
    output = kedro_project / "data/05_model_input/fashion_mnist.safetensors"
    before = output.read_bytes()
    raw = kedro_project / "data/01_raw/fashion-mnist/t10k-images-idx3-ubyte.gz"
    raw.write_bytes(raw.read_bytes()[:-20])
    import pytest

    with pytest.raises(Exception, match="t10k-images-idx3-ubyte.gz"):
        run_pipeline(kedro_project, ["data_processing"])
    assert output.read_bytes() == before
