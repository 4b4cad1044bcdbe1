"""Data contracts at the model-input boundary: a bad file is one line naming it, and nothing
downstream (``models/``) is overwritten."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import torch
import yaml
from kedro.io import DatasetError

from fashiongan.datasets import TensorDictDataset
from fashiongan.datasets.contracts import ContractError, TensorContract
from tests.conftest import REPO_ROOT, kedro_run_failure

MODEL_INPUT = "data/05_model_input/fashion_mnist.safetensors"


def catalog_contract() -> dict:
    """The model input's contract exactly as the project's catalog declares it."""
    catalog = yaml.safe_load((REPO_ROOT / "conf/base/catalog.yml").read_text())
    return catalog["fashion_mnist_model_input"]["contract"]


def model_input(n_train: int = 6, n_validation: int = 2, n_test: int = 3) -> dict:
    """A tiny model input that keeps the contract (images in [-1, 1], labels 0-9)."""
    g = torch.Generator().manual_seed(0)

    def images(n: int) -> torch.Tensor:
        return torch.rand(n, 1, 28, 28, generator=g) * 2 - 1

    return {
        "train_images": images(n_train),
        "train_labels": torch.arange(n_train) % 10,
        "validation_images": images(n_validation),
        "validation_labels": torch.arange(n_validation) % 10,
        "test_images": images(n_test),
        "test_labels": torch.arange(n_test) % 10,
    }


def dataset(tmp_path: Path) -> TensorDictDataset:
    return TensorDictDataset(filepath=str(tmp_path / MODEL_INPUT), contract=catalog_contract())


def write_unchecked(tmp_path: Path, data: dict) -> Path:
    """Write a file as a buggy or older step would: no contract applied on the way out."""
    TensorDictDataset(filepath=str(tmp_path / MODEL_INPUT)).save(data)
    return tmp_path / MODEL_INPUT


def test_a_good_model_input_loads(tmp_path: Path):
    write_unchecked(tmp_path, model_input())
    loaded = dataset(tmp_path).load()
    assert torch.equal(loaded["train_images"], model_input()["train_images"])


BREAKS = [
    (
        "out of range",
        {"train_images": torch.full((6, 1, 28, 28), 3.0)},
        "train_images has values outside [-1, 1] (max 3)",
    ),
    (
        "NaN pixels",
        {"test_images": torch.full((3, 1, 28, 28), float("nan"))},
        "test_images has 2352 non-finite values (2352 NaN, 0 inf)",
    ),
    (
        "label out of range",
        {"validation_labels": torch.tensor([0, 12])},
        "validation_labels has values outside [0, 9] (max 12)",
    ),
    ("missing key", {"test_labels": None}, "missing test_labels"),
    (
        "wrong dtype",
        {"train_images": torch.zeros(6, 1, 28, 28, dtype=torch.float64)},
        "train_images is float64, expected float32",
    ),
    (
        "wrong shape",
        {"train_images": torch.zeros(6, 28, 28)},
        "train_images has shape (6, 28, 28), expected (n_train, 1, 28, 28)",
    ),
    (
        "labels disagree with images",
        {"train_labels": torch.arange(5)},
        "train_labels has shape (5,) but train_images has n_train = 6",
    ),
]


@pytest.mark.parametrize(("case", "change", "problem"), BREAKS, ids=[b[0] for b in BREAKS])
def test_a_broken_model_input_is_one_line_naming_file_problem_and_remedy(
    tmp_path: Path, case: str, change: dict, problem: str
):
    data = {k: v for k, v in (model_input() | change).items() if v is not None}
    path = write_unchecked(tmp_path, data)
    with pytest.raises(DatasetError) as err:
        dataset(tmp_path).load()
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {problem}")
    assert message.endswith(": rerun `make data`")


def test_the_contract_refuses_to_write_a_bad_file_and_keeps_the_good_one(tmp_path: Path):
    dataset(tmp_path).save(model_input())
    before = (tmp_path / MODEL_INPUT).read_bytes()
    bad = model_input() | {"train_images": torch.full((6, 1, 28, 28), -5.0)}
    with pytest.raises(
        DatasetError, match=r"not written: train_images has values outside .*min -5"
    ):
        dataset(tmp_path).save(bad)
    assert (tmp_path / MODEL_INPUT).read_bytes() == before


def test_a_malformed_contract_in_the_catalog_is_named():
    with pytest.raises(ContractError, match=r"contract for x: unknown dtype 'float33'"):
        TensorContract.from_config({"tensors": {"x": {"dtype": "float33"}}})
    with pytest.raises(ContractError, match=r"contract for x: unknown field\(s\) \['rnage'\]"):
        TensorContract.from_config({"tensors": {"x": {"rnage": [0, 1]}}})
    with pytest.raises(DatasetError, match=r"m.safetensors: bad contract in the catalog"):
        TensorDictDataset(filepath="m.safetensors", contract={"tensor": {}})


def test_minus_one_is_any_size_and_keys_outside_the_contract_are_allowed():
    contract = TensorContract.from_config({"tensors": {"x": {"shape": [-1, 2], "range": [0, 1]}}})
    assert contract.problem({"x": torch.zeros(7, 2), "extra": torch.full((1,), 9.0)}) is None
    assert contract.problem({"x": torch.zeros(0, 2)}) is None  # an empty split has no values
    assert contract.problem({"x": torch.zeros(7, 3)}) == "x has shape (7, 3), expected (-1, 2)"


@pytest.mark.slow
def test_kedro_run_refuses_out_of_range_model_input_and_keeps_models(kedro_project: Path):
    """Every pixel 3.0: one line naming the file, no MLflow-logged training, models/ untouched."""
    write_unchecked(
        kedro_project, model_input() | {"train_images": torch.full((6, 1, 28, 28), 3.0)}
    )
    published = kedro_project / "models/baseline/default/generator.safetensors"
    published.parent.mkdir(parents=True)
    published.write_bytes(b"the published baseline")
    line = kedro_run_failure(kedro_project, "--pipelines=train_gan", "--namespaces=baseline")
    assert line.startswith(
        f"Error: {MODEL_INPUT}: train_images has values outside [-1, 1] (max 3): rerun `make data`"
    )
    assert published.read_bytes() == b"the published baseline"
    assert sorted(p.name for p in published.parent.iterdir()) == ["generator.safetensors"]
    assert not list(kedro_project.glob("data/06_models/checkpoints/baseline/**/ckpt-*"))
    with sqlite3.connect(kedro_project / "mlflow.db") as db:
        assert db.execute("select status from runs").fetchall() == [("FAILED",)]
