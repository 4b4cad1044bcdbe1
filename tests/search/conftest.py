"""Tiny untrained models, planted models and a tiny catalog for the search tests (no trained
weights needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from fashiongan.datasets.safetensors import save_module
from fashiongan.models.conditional_gan import (
    ConditionalGANConfig,
    ConditionalGenerator,
    EmbeddingConfig,
    ImageEmbedder,
)
from fashiongan.models.mlp_gan import MLPGenerator
from fashiongan.pixels import from_uint8
from fashiongan.text.captions import CLASS_SYNONYMS
from tests.conftest import draw_items
from tests.model_configs import SMALL_CONDITIONAL, conditional_config, embedding_config, mlp_config

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


TINY_GENERATOR = conditional_config(**SMALL_CONDITIONAL)


class PlantedGenerator(ConditionalGenerator):
    """A stand-in for a well-trained conditional GAN: draws the asked-for class.

    The class is the one whose plain caption ("a sneaker") has the text features nearest the
    query's; its picture is drawn like the catalog's (:func:`tests.conftest.draw_items`), with
    another seed, so no query image is a catalog item.
    """

    def __init__(self, config: ConditionalGANConfig, class_features: torch.Tensor) -> None:
        super().__init__(config)
        self.register_buffer("class_features", F.normalize(class_features, dim=1))
        self.shift = 0  # draw class (asked + shift) % 10: a generator that gets it wrong

    def forward(self, z, text, reference=None):  # (B, noise) (B, text_dim) → (B, 1, 28, 28)
        labels = (F.normalize(text, dim=1) @ self.class_features.T).argmax(1)
        drawn = draw_items(((labels + self.shift) % 10).numpy(), seed=11)
        return from_uint8(torch.from_numpy(drawn).unsqueeze(1))


class TonedGenerator(PlantedGenerator):
    """The planted generator that also draws the asked tone: the text's nearest of "a coat",
    "a dark coat", "a medium-tone coat", "a light coat" (every class) sets class and shade."""

    SHADES = (1.0, 0.7, 1.0, 1.3)  # no tone named, dark, medium, light

    def __init__(self, config: ConditionalGANConfig, caption_features: torch.Tensor) -> None:
        super().__init__(config, caption_features[:10])
        self.register_buffer("caption_features", F.normalize(caption_features, dim=1))

    def forward(self, z, text, reference=None):  # (B, noise) (B, text_dim) → (B, 1, 28, 28)
        nearest = (F.normalize(text, dim=1) @ self.caption_features.T).argmax(1)  # (B,)
        labels, shade = nearest % 10, nearest // 10
        drawn = torch.from_numpy(draw_items(labels.numpy(), seed=11)).float()
        scale = torch.tensor(self.SHADES)[shade].view(-1, 1, 1)
        return from_uint8((drawn * scale).clamp(0, 255).round().unsqueeze(1))


class PrototypeEmbedder(ImageEmbedder):
    """A stand-in for a trained embedder: each class one tight cluster.

    The vector is a softmax over how near the picture is to each class's mean drawing (50
    drawings per class, another seed than the catalog's and the generator's), unit length.
    """

    def __init__(self, config: EmbeddingConfig | None = None) -> None:
        super().__init__(embedding_config(width=1, dim=10))
        drawn = torch.from_numpy(draw_items(np.repeat(np.arange(10), 50), seed=99))
        self.register_buffer("prototypes", from_uint8(drawn).view(10, 50, -1).mean(1))

    def forward(self, images):  # (B, 1, 28, 28) in [-1, 1] → (B, 10)
        distances = torch.cdist(images.flatten(1), self.prototypes)  # (B, 10)
        return F.normalize(torch.softmax(-distances / 0.4, dim=1), dim=1)


def planted_models() -> tuple[PlantedGenerator, PrototypeEmbedder]:
    """The planted generator (class captions encoded by the bundled text encoder) and embedder."""
    from fashiongan.generation import text_encoder

    captions = [f"a {CLASS_SYNONYMS[label][0]}" for label in range(10)]
    features = text_encoder("bundled", TINY_GENERATOR.text_pooling).encode(captions)
    return PlantedGenerator(TINY_GENERATOR, features).eval(), PrototypeEmbedder().eval()


def tiny_models(folder: Path) -> dict[str, Path]:
    """Write a tiny conditional generator, embedder and MLP generator; return their paths."""
    torch.manual_seed(0)
    generator = ConditionalGenerator(TINY_GENERATOR)
    embedder = ImageEmbedder(embedding_config(width=4, dim=8))
    baseline = MLPGenerator(
        mlp_config(noise_dim=8, generator_hidden=(16,), discriminator_hidden=(16,))
    )
    paths = {
        "generator": folder / "conditional" / "default" / "generator.safetensors",
        "embedder": folder / "conditional" / "default" / "embedder.safetensors",
        "baseline": folder / "baseline" / "default" / "generator.safetensors",
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


def query_settings(**changes):
    """conf/base's ``search_app.query`` block with ``changes``: what the tests' services read."""
    from fashiongan.config import load_parameters, overridden

    return overridden(load_parameters()["search_app"].query, **changes)


@pytest.fixture(scope="session")
def model_paths(tmp_path_factory) -> dict[str, Path]:
    return tiny_models(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def service(model_paths):
    """A SearchService over the tiny catalog with a conditional and an unconditional model."""
    from fashiongan.datasets.safetensors import load_module
    from fashiongan.search.catalog import Catalog
    from fashiongan.search.index import build_index
    from fashiongan.search.service import SearchService

    table, pixels = tiny_items()
    embedder = load_module(model_paths["embedder"])
    with torch.no_grad():
        vectors = embedder(from_uint8(pixels)).numpy()
    return SearchService(
        {
            "conditional": load_module(model_paths["generator"]),
            "baseline": load_module(model_paths["baseline"]),
        },
        embedder,
        build_index(vectors),
        Catalog(table, pixels),
        query_settings(k=5, n_images=2, fuse_text=False, class_boost=0.0),
    )


@pytest.fixture(scope="session")
def planted_service():
    """A SearchService over the tiny catalog whose generator draws the asked class."""
    from fashiongan.search.catalog import Catalog
    from fashiongan.search.index import build_index
    from fashiongan.search.service import SearchService

    table, pixels = tiny_items()
    generator, embedder = planted_models()
    with torch.no_grad():
        vectors = embedder(from_uint8(pixels)).numpy()
    return SearchService(
        {"planted": generator},
        embedder,
        build_index(vectors),
        Catalog(table, pixels),
        query_settings(k=5, n_images=2, fuse_text=False, class_boost=0.0),
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
    from fashiongan.config import load_parameters
    from fashiongan.datasets import TensorDictDataset
    from fashiongan.datasets.faiss_index import write_index
    from fashiongan.datasets.safetensors import load_module
    from fashiongan.pipelines.search_index.nodes import build_search_index, embed_catalog

    paths = tiny_models(project / "models")
    table, pixels = tiny_items()
    out = project / "data/07_model_output/search/default"
    out.mkdir(parents=True, exist_ok=True)
    table.to_parquet(out / "catalog.parquet")
    TensorDictDataset(filepath=str(out / "thumbnails.safetensors")).save({"images": pixels})
    vectors = embed_catalog({"images": pixels}, load_module(paths["embedder"]), 32)
    index, _ = build_search_index(vectors, load_parameters(project / "conf")["search_index"].index)
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


def described_items(n: int = 300) -> tuple[pd.DataFrame, torch.Tensor, dict[str, torch.Tensor]]:
    """A tiny catalog whose titles state each item's measured tone (as the real catalog's
    captions do), its pictures and the attribute cut points fit on it."""
    from fashiongan.attributes import assign, fit_thresholds
    from fashiongan.search.intent import Intent

    table, pixels = tiny_items(n)
    labels = torch.tensor(table["label"].to_numpy(dtype=np.int64))
    thresholds = fit_thresholds(pixels, labels)
    values = assign(pixels, labels, thresholds)
    # the tone only: box drawings differ in shade, barely in fit or pattern
    table["title"] = [
        Intent(int(label), int(tone)).caption()
        for label, tone in zip(labels, values["tone"], strict=True)
    ]
    return table, pixels, thresholds


@pytest.fixture(scope="session")
def conversation_service():
    """The planted service over 300 described items, measuring references (k=10)."""
    from fashiongan.generation import text_encoder
    from fashiongan.search.catalog import Catalog
    from fashiongan.search.index import build_index
    from fashiongan.search.service import SearchService
    from fashiongan.text.captions import TONE_WORDS

    table, pixels, thresholds = described_items()
    _, embedder = planted_models()
    captions = [
        f"a {shade}{CLASS_SYNONYMS[label][0]}"
        for shade in ("", *(f"{TONE_WORDS[t][0]} " for t in range(3)))
        for label in range(10)
    ]
    features = text_encoder("bundled", TINY_GENERATOR.text_pooling).encode(captions)
    generator = TonedGenerator(TINY_GENERATOR, features).eval()
    with torch.no_grad():
        vectors = embedder(from_uint8(pixels)).numpy()
    return SearchService(
        {"toned": generator},
        embedder,
        build_index(vectors),
        Catalog.measured(table, pixels, thresholds),
        query_settings(k=10, n_images=2),  # ranks as conf/base
        attribute_thresholds=thresholds,
    )
