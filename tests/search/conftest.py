"""Tiny untrained models and a tiny catalog for the search tests (no trained weights needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from fashiongan.datasets.safetensors import save_module
from fashiongan.models.conditional_gan import (
    ConditionalGANConfig,
    ConditionalGenerator,
    EmbeddingConfig,
    ImageEmbedder,
)
from fashiongan.models.mlp_gan import MLPGANConfig, MLPGenerator
from fashiongan.text.captions import CLASS_SYNONYMS
from tests.conftest import draw_items

N_ITEMS = 60
CLASS_NAMES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]


def tiny_models(folder: Path) -> dict[str, Path]:
    """Write a tiny conditional generator, embedder and MLP generator; return their paths."""
    torch.manual_seed(0)
    generator = ConditionalGenerator(
        ConditionalGANConfig(
            g_channels=8, d_channels=8, text_channels=4, noise_channels=4, embed_dim=16
        )
    )
    embedder = ImageEmbedder(EmbeddingConfig(width=4, dim=8))
    baseline = MLPGenerator(
        MLPGANConfig(noise_dim=8, generator_hidden=(16,), discriminator_hidden=(16,))
    )
    paths = {
        "generator": folder / "conditional" / "generator.safetensors",
        "embedder": folder / "conditional" / "embedder.safetensors",
        "baseline": folder / "baseline" / "generator.safetensors",
    }
    for key, module in (("generator", generator), ("embedder", embedder), ("baseline", baseline)):
        save_module(module.eval(), paths[key])
    return paths


def tiny_items(n: int = N_ITEMS) -> tuple[pd.DataFrame, torch.Tensor]:
    """A catalog table and uint8 (n, 1, 28, 28) pictures drawn per class."""
    labels = np.arange(n) % 10
    pixels = torch.from_numpy(draw_items(labels, seed=3)).unsqueeze(1)
    table = pd.DataFrame(
        {
            "id": [f"item-{i:03d}" for i in range(n)],
            "title": [f"a plain {CLASS_SYNONYMS[int(v)][0]}" for v in labels],
            "category": [CLASS_NAMES[int(v)] for v in labels],
            "label": labels,
            "image": "",
        }
    )
    return table, pixels


@pytest.fixture(scope="session")
def model_paths(tmp_path_factory) -> dict[str, Path]:
    return tiny_models(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def service(model_paths):
    """A SearchService over the tiny catalog with a conditional and an unconditional model."""
    from fashiongan.datasets.safetensors import load_module
    from fashiongan.search.index import build_index
    from fashiongan.search.service import Catalog, SearchService, SearchSettings

    table, pixels = tiny_items()
    embedder = load_module(model_paths["embedder"])
    with torch.no_grad():
        vectors = embedder(pixels.float() / 127.5 - 1.0).numpy()
    return SearchService(
        {
            "conditional": load_module(model_paths["generator"]),
            "baseline": load_module(model_paths["baseline"]),
        },
        embedder,
        build_index(vectors),
        Catalog(table, pixels),
        SearchSettings(k=5, n_images=2),
    )


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Queries are tiny: one thread is faster than two fighting for a busy shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def write_index_files(project: Path) -> None:
    """The search_index outputs of a tiny catalog, written where conf/base's catalog expects them
    (the nodes are called directly: no Kedro session)."""
    from fashiongan.datasets import TensorDictDataset
    from fashiongan.datasets.safetensors import load_module
    from fashiongan.pipelines.search_index.nodes import build_search_index, embed_catalog
    from fashiongan.search.index import write_index

    paths = tiny_models(project / "models")
    table, pixels = tiny_items()
    out = project / "data/07_model_output/search"
    out.mkdir(parents=True, exist_ok=True)
    table.to_parquet(out / "catalog.parquet")
    TensorDictDataset(filepath=str(out / "thumbnails.safetensors")).save({"images": pixels})
    vectors = embed_catalog({"images": pixels}, load_module(paths["embedder"]), 32)
    index, _ = build_search_index(vectors, {})
    write_index(index, out / "index.faiss")


@pytest.fixture(scope="module")
def search_project(tmp_path_factory):
    """A copy of the project's conf/ with tiny models and a tiny index; cwd switched there."""
    from tests.conftest import make_kedro_project

    monkeypatch = pytest.MonkeyPatch()
    project = make_kedro_project(tmp_path_factory.mktemp("search_project"), monkeypatch)
    write_index_files(project)
    yield project
    monkeypatch.undo()
