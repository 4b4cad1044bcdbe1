"""Every project dataset in conf/base: built by the catalog, described (kedro-viz, ``kedro
catalog``) and turned back into its configuration (``DataCatalog.to_config``)."""

from __future__ import annotations

import pytest
import torch
from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog
from kedro_viz.models.flowchart.model_utils import _parse_filepath

from fashiongan.datasets import (
    FaissIndexDataset,
    FashionMNISTRawDataset,
    FileDataset,
    OptionalPartitionedDataset,
    TensorDictDataset,
    TextEncoderDataset,
    TorchModelDataset,
)
from fashiongan.settings import CONFIG_LOADER_ARGS

PROJECT_DATASETS = {
    FashionMNISTRawDataset,
    TensorDictDataset,
    TorchModelDataset,
    TextEncoderDataset,
    FaissIndexDataset,
    OptionalPartitionedDataset,
}


@pytest.fixture(scope="module")
def base_catalog() -> tuple[dict, DataCatalog]:
    config = OmegaConfigLoader("conf", env="base", **CONFIG_LOADER_ARGS)["catalog"]
    return config, DataCatalog.from_config(config)


def _ours(config: dict) -> dict[str, dict]:
    """conf/base entries of fashiongan types; ``{namespace}`` patterns as the conditional model."""
    return {
        name.replace("{namespace}", "conditional"): entry
        for name, entry in config.items()
        if str(entry.get("type", "")).startswith("fashiongan.")
    }


def test_every_catalog_type_is_a_project_dataset_in_one_package(base_catalog):
    config, catalog = base_catalog
    types = {type(catalog.get(name)) for name in _ours(config)}
    assert types == PROJECT_DATASETS
    assert all(cls.__module__.startswith("fashiongan.datasets.") for cls in types)
    assert all(entry["type"].count(".") == 2 for entry in _ours(config).values())  # package.Class


def test_each_dataset_describes_its_path_and_gives_back_its_configuration(base_catalog):
    config, catalog = base_catalog
    for name, entry in _ours(config).items():
        dataset = catalog.get(name)
        path = entry.get("filepath") or entry.get("path")
        assert _parse_filepath(dataset._describe()) == path.replace("{namespace}", "conditional")
        assert repr(dataset).startswith(f"{type(dataset).__module__}.{type(dataset).__name__}(")
        recorded = dataset._init_config()  # what DataCatalog.to_config writes
        assert "args" not in recorded and "kwargs" not in recorded, name
        for key, value in entry.items():
            if key not in ("type", "dataset"):
                expected = (
                    value.replace("{namespace}", "conditional") if key == "filepath" else value
                )
                assert recorded[key] == expected, (name, key)


def test_inherited_init_records_its_own_arguments(tmp_path):
    """Kedro wraps each subclass's __init__; an inherited one must not be wrapped twice."""

    class Plain(FileDataset[int, int]):
        def load(self) -> int:
            return int(self.path.read_text())

        def save(self, data: int) -> None:
            self.path.write_text(str(data))

    dataset = Plain(str(tmp_path / "n.txt"))
    assert dataset._init_args == {"filepath": str(tmp_path / "n.txt"), "metadata": None}
    assert not dataset.exists()
    dataset.save(3)
    assert dataset.exists() and dataset.load() == 3
    entry = {"type": "fashiongan.datasets.TensorDictDataset", "filepath": str(tmp_path / "t")}
    catalog = DataCatalog.from_config({"t": entry})
    assert catalog.to_config()[0]["t"]["filepath"] == entry["filepath"]


def test_optional_partitions_are_empty_not_an_error(tmp_path):
    for name in ("a", "b"):
        TensorDictDataset(filepath=str(tmp_path / name / "x.safetensors")).save(
            {"v": torch.tensor([ord(name)])}
        )
    found = OptionalPartitionedDataset(
        path=str(tmp_path),
        dataset="fashiongan.datasets.TensorDictDataset",
        filename_suffix="/x.safetensors",
    ).load()
    assert sorted(found) == ["a", "b"] and int(found["b"]()["v"]) == ord("b")
    none = OptionalPartitionedDataset(
        path=str(tmp_path),
        dataset="fashiongan.datasets.TensorDictDataset",
        filename_suffix="/y.safetensors",
    )
    assert none.load() == {}
    assert none._init_config()["filename_suffix"] == "/y.safetensors"
