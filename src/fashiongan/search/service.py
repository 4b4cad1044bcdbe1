"""The query service: text and/or a picture → intent → generated image → embedding → top-K items.

One :class:`SearchService` serves every caller (the ``fashiongan search`` CLI, the Gradio app, the
benchmarks). Bad input raises :class:`SearchInputError` with one line that says what is wrong;
the service itself keeps serving. Problems that are not errors (text cut at the tokenizer limit,
an image converted from RGBA) come back as ``notices``.

Query kinds:
    text only: the detected intent, rewritten in the caption grammar ("a dark ankle boot"), is
        what the conditional generator draws; when no class is found the text is used as typed.
    text + image: a composed query ("the same but darker"): the typed text and the picture go to
        the generator together.
    image only: the picture itself is embedded (query by example), nothing is generated.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image

from fashiongan.config import (
    ConfigError,
    SearchAppParams,
    SearchDatasets,
    SearchQuery,
    parse_block,
)
from fashiongan.errors import one_line
from fashiongan.generation import GenerationError, generate, text_encoder
from fashiongan.images import ImageInputError, open_image, to_model_input, to_picture
from fashiongan.models.conditional_gan import ConditionalGenerator
from fashiongan.search.index import search as index_search
from fashiongan.search.intent import Intent, IntentDetector

log = logging.getLogger(__name__)

EXAMPLE_QUERY = "a dark ankle boot"


class SearchInputError(ValueError):
    """A query the service cannot answer; the message is one line meant for the user."""


@dataclass(frozen=True)
class SearchSettings:
    k: int = 10  # catalog items returned
    n_images: int = 4  # generated images per query; their mean embedding is the query vector
    seed: int = 0
    max_k: int = 100
    max_images: int = 16
    max_text_chars: int = 2000  # longer text is cut before tokenizing (and the user told)
    use_intent_caption: bool = True  # text-only queries: draw the detected intent's caption
    class_threshold: float = 0.6
    attribute_threshold: float = 0.6
    max_words: int = 32

    @classmethod
    def from_params(cls, query: SearchQuery) -> SearchSettings:
        """Settings from the typed ``search_app.query`` block; the limits keep their defaults."""
        return cls(**query.model_dump())


@dataclass
class Catalog:
    """The searchable items: one table row per index row, and their pictures.

    Attributes:
        table: columns ``id``, ``title``, ``category``, ``label`` (-1 = unknown) and ``image``
            (path of the original picture, "" for Fashion-MNIST).
        thumbnails: (N, C, H, W) uint8 pictures at model resolution, or None.
    """

    table: pd.DataFrame
    thumbnails: torch.Tensor | None = None

    def __post_init__(self) -> None:
        missing = {"id", "title", "category", "label"} - set(self.table.columns)
        if missing:
            raise ValueError(f"catalog table lacks columns {sorted(missing)}")
        self.table = self.table.reset_index(drop=True)
        if self.thumbnails is not None and len(self.thumbnails) != len(self.table):
            raise ValueError(
                f"{len(self.table)} catalog rows but {len(self.thumbnails)} thumbnails"
            )

    def __len__(self) -> int:
        return len(self.table)

    def image(self, row: int, scale: int = 4) -> Image.Image | None:
        """The item's picture: the original file when there is one, else the thumbnail ×scale."""
        path = str(self.table.at[row, "image"]) if "image" in self.table.columns else ""
        if path and Path(path).is_file():
            try:
                return open_image(path).convert("RGB")
            except ImageInputError:
                log.warning("catalog image %s is unreadable; showing the thumbnail", path)
        if self.thumbnails is None:
            return None
        return to_picture(self.thumbnails[row].permute(1, 2, 0).numpy(), scale)  # (H, W, C)


@dataclass
class SearchResult:
    """Everything one query produced; :meth:`to_dict` is the JSON the CLI prints."""

    model: str
    text: str | None
    had_image: bool
    intent: Intent | None
    generator_text: str | None
    images: torch.Tensor | None  # (n, C, H, W) in [-1, 1]: what was generated
    hits: list[dict[str, Any]]
    notices: list[str] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def keywords(self) -> list[str]:
        return [] if self.intent is None else [k.describe() for k in self.intent.keywords]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "query": {"text": self.text, "image": self.had_image},
            "keywords": self.keywords,
            "intent": None if self.intent is None else self.intent.to_dict(),
            "generator_text": self.generator_text,
            "generated_images": 0 if self.images is None else int(self.images.shape[0]),
            "results": self.hits,
            "notices": self.notices,
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
        }


def _fit_images(images: torch.Tensor, size: int, channels: int) -> torch.Tensor:
    """Resize/convert (B, C, H, W) images to what the embedder takes."""
    if images.shape[1] != channels:
        images = images.mean(1, keepdim=True) if channels == 1 else images.expand(-1, 3, -1, -1)
    if images.shape[-1] != size or images.shape[-2] != size:
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    return images


class SearchService:
    """Answers queries against one catalog with one embedder and one or more generators.

    Args:
        generators: name → generator; the first conditional one is the default.
        embedder: ``ImageEmbedder`` (images in [-1, 1] → unit vectors).
        index: a faiss index over the catalog vectors (row i = catalog row i).
        catalog: the items.
        settings: defaults and limits.
        encoder: the sentence encoder for intent detection; default: the one the default
            generator was trained with (shared with generation, loaded once per process).
    """

    def __init__(
        self,
        generators: dict[str, torch.nn.Module],
        embedder: torch.nn.Module,
        index,
        catalog: Catalog,
        settings: SearchSettings | None = None,
        encoder=None,
    ) -> None:
        if not generators:
            raise ValueError("the search service needs at least one generator")
        if int(index.ntotal) != len(catalog):
            raise ValueError(
                f"the index holds {index.ntotal} vectors but the catalog {len(catalog)} items: "
                "rebuild the index (kedro run --pipelines=search_index)"
            )
        if int(index.d) != int(embedder.config.dim):
            raise ValueError(
                f"the index holds {index.d}-d vectors but the embedder makes "
                f"{embedder.config.dim}-d ones: rebuild the index with this embedder"
            )
        self.generators = {name: g.eval() for name, g in generators.items()}
        self.embedder = embedder.eval()
        self.index = index
        self.catalog = catalog
        self.settings = settings or SearchSettings()
        conditional = [n for n, g in self.generators.items() if isinstance(g, ConditionalGenerator)]
        self.default_model = conditional[0] if conditional else next(iter(self.generators))
        if encoder is None:
            config = getattr(self.generators[self.default_model].config, "text_encoder", "bundled")
            pooling = getattr(self.generators[self.default_model].config, "text_pooling", "mean")
            encoder = text_encoder(config, pooling)
        self.encoder = encoder
        s = self.settings
        self.detector = IntentDetector(
            encoder, s.class_threshold, s.attribute_threshold, max_words=s.max_words
        )
        # One query at a time: HF tokenizers and faiss are not safe to share between threads,
        # and on a CPU a query already uses every core.
        self._lock = threading.RLock()

    @property
    def model_names(self) -> list[str]:
        return list(self.generators)

    def is_conditional(self, model: str) -> bool:
        return isinstance(self.generators[model], ConditionalGenerator)

    # --- input checks --------------------------------------------------------------------------
    def _check_text(self, text: str | None, notices: list[str]) -> str | None:
        if text is None:
            return None
        if not isinstance(text, str):
            raise SearchInputError(f"the query text must be a string, got {type(text).__name__}")
        text = " ".join(text.split())
        if not text:
            return None
        limit = self.settings.max_text_chars
        if len(text) > limit:
            text = text[:limit]
            notices.append(f"Your text was over {limit} characters; only the start was read.")
        n_tokens = int(self.encoder.tokenize([text]).n_tokens[0])
        if n_tokens > self.encoder.max_length:
            notices.append(
                f"Your text is {n_tokens} tokens long; the text encoder reads the first "
                f"{self.encoder.max_length}, the rest was ignored."
            )
        return text

    def _check_image(self, image, size: int, channels: int, notices: list[str]) -> torch.Tensor:
        try:
            picture = open_image(image)
            mode = picture.mode
            tensor = to_model_input(picture, size, channels)
        except ImageInputError as err:
            raise SearchInputError(str(err)) from err
        except (OSError, ValueError) as err:  # a decoder failing late
            raise SearchInputError(f"the image could not be read ({type(err).__name__})") from err
        target = "L" if channels == 1 else "RGB"
        if mode != target:
            notices.append(f"Your {mode} image was converted to {target}.")
        return tensor

    def _check_counts(self, k: int | None, n_images: int | None) -> tuple[int, int]:
        s = self.settings
        k = s.k if k is None else int(k)
        n_images = s.n_images if n_images is None else int(n_images)
        if not 1 <= k <= s.max_k:
            raise SearchInputError(f"k must be between 1 and {s.max_k}, got {k}")
        if not 1 <= n_images <= s.max_images:
            raise SearchInputError(f"n_images must be between 1 and {s.max_images}, got {n_images}")
        return k, n_images

    def _generator(self, model: str | None) -> tuple[str, torch.nn.Module]:
        name = model or self.default_model
        if name not in self.generators:
            raise SearchInputError(f"unknown model {name!r}; available: {self.model_names}")
        return name, self.generators[name]

    # --- the steps -----------------------------------------------------------------------------
    @torch.no_grad()
    def embed(self, images: torch.Tensor) -> np.ndarray:
        """(B, C, H, W) in [-1, 1] → (1, dim) unit query vector (mean of the B embeddings)."""
        c = self.embedder.config
        vectors = self.embedder(_fit_images(images.float(), c.image_size, c.channels))
        return F.normalize(vectors.mean(0, keepdim=True), dim=1).numpy()

    def lookup(self, query: np.ndarray, k: int) -> list[dict[str, Any]]:
        """Top-k catalog items for one query vector, with their cosine scores."""
        scores, rows = index_search(self.index, query, k)
        table = self.catalog.table
        hits = []
        for score, row in zip(scores[0].tolist(), rows[0].tolist(), strict=True):
            if row < 0:
                continue
            hits.append(
                {
                    "rank": len(hits) + 1,
                    "row": int(row),
                    "id": str(table.at[row, "id"]),
                    "title": str(table.at[row, "title"]),
                    "category": str(table.at[row, "category"]),
                    "label": int(table.at[row, "label"]),
                    "score": round(float(score), 4),
                }
            )
        return hits

    def search(
        self,
        text: str | None = None,
        image: str | Path | bytes | Image.Image | None = None,
        *,
        model: str | None = None,
        k: int | None = None,
        n_images: int | None = None,
        seed: int | None = None,
    ) -> SearchResult:
        """Answer one query (see the module docstring for the three kinds).

        Raises:
            SearchInputError: empty query, unreadable image, bad k/n_images, unknown model.
        """
        with self._lock:
            return self._search(text, image, model, k, n_images, seed)

    def _search(self, text, image, model, k, n_images, seed) -> SearchResult:
        timings: dict[str, float] = {}
        started = time.perf_counter()
        notices: list[str] = []
        name, generator = self._generator(model)
        k, n_images = self._check_counts(k, n_images)
        seed = self.settings.seed if seed is None else int(seed)
        text = self._check_text(text, notices)
        conditional = isinstance(generator, ConditionalGenerator)
        reference = None
        if image is not None:
            config = generator.config if conditional else self.embedder.config
            reference = self._check_image(image, config.image_size, config.channels, notices)
        if text is None and reference is None:
            raise SearchInputError(
                f"Type what you are looking for (e.g. '{EXAMPLE_QUERY}') or upload a picture."
            )
        timings["input"] = _ms_since(started)

        mark = time.perf_counter()
        intent = self.detector.detect(text) if text is not None else None
        timings["intent"] = _ms_since(mark)

        mark = time.perf_counter()
        generator_text, images = None, None
        if not conditional:
            images = generate(generator, n_images, seed)
            notices.append(f"'{name}' is unconditional: its samples ignore the query.")
        elif text is not None:
            caption = intent.caption() if intent is not None else None
            use_caption = self.settings.use_intent_caption and reference is None and caption
            generator_text = caption if use_caption else text
            try:
                images = generate(generator, n_images, seed, generator_text, reference)
            except GenerationError as err:
                raise SearchInputError(str(err)) from err
        timings["generate"] = _ms_since(mark)

        mark = time.perf_counter()
        query = self.embed(images if images is not None else reference)
        timings["embed"] = _ms_since(mark)
        mark = time.perf_counter()
        hits = self.lookup(query, k)
        timings["search"] = _ms_since(mark)
        timings["total"] = _ms_since(started)
        return SearchResult(
            model=name,
            text=text,
            had_image=reference is not None,
            intent=intent,
            generator_text=generator_text,
            images=images,
            hits=hits,
            notices=notices,
            timings_ms=timings,
        )

    def generate(
        self,
        text: str | None,
        image=None,
        *,
        model: str | None = None,
        n_images: int = 16,
        seed: int | None = None,
    ) -> tuple[torch.Tensor, list[str]]:
        """Images only (the Generate tab): the text as typed, optional reference picture.

        Returns:
            (n, C, H, W) images in [-1, 1] and notices.
        """
        with self._lock:
            notices: list[str] = []
            name, generator = self._generator(model)
            _, n_images = self._check_counts(1, n_images)
            seed = self.settings.seed if seed is None else int(seed)
            text = self._check_text(text, notices)
            if not isinstance(generator, ConditionalGenerator):
                notices.append(f"'{name}' is unconditional: its samples ignore the query.")
                return generate(generator, n_images, seed), notices
            reference = None
            if image is not None:
                c = generator.config
                reference = self._check_image(image, c.image_size, c.channels, notices)
            if text is None:
                raise SearchInputError(
                    f"Type a caption (e.g. '{EXAMPLE_QUERY}'); a reference picture alone is not "
                    "enough to generate."
                )
            try:
                return generate(generator, n_images, seed, text, reference), notices
            except GenerationError as err:
                raise SearchInputError(str(err)) from err

    def compare(
        self, text: str | None, image=None, *, k: int | None = None, seed: int | None = None
    ) -> dict[str, SearchResult]:
        """The same query on every model (unconditional ones just sample)."""
        return {
            name: self.search(text, image, model=name, k=k, seed=seed) for name in self.generators
        }


def _ms_since(mark: float) -> float:
    return (time.perf_counter() - mark) * 1000.0


# --- loading -------------------------------------------------------------------------------------
def load_settings(
    conf_source: str | Path = "conf", env: str | None = None
) -> tuple[SearchAppParams, dict[str, Any]]:
    """The typed ``search_app`` block and the catalog configuration, as ``kedro run`` reads them
    (conf/base merged with conf/local).

    Raises:
        SearchInputError: no ``search_app`` block, or one line naming each bad key in it.
    """
    from kedro.config import OmegaConfigLoader

    from fashiongan.settings import CONFIG_LOADER_ARGS

    loader = OmegaConfigLoader(conf_source=str(conf_source), env=env, **CONFIG_LOADER_ARGS)
    params = loader["parameters"]
    if "search_app" not in params:
        raise SearchInputError(f"no 'search_app' parameters under {conf_source}")
    try:
        settings = parse_block("search_app", params["search_app"])
    except ConfigError as err:
        raise SearchInputError(str(err)) from err
    return settings, loader["catalog"]


def load_service(
    conf_source: str | Path = "conf", env: str | None = None, models: list[str] | None = None
) -> tuple[SearchService, SearchAppParams]:
    """Build the service from the project's catalog entries (run from the project root).

    Missing generators are skipped with a warning as long as one is left; a missing index or
    embedder is a one-line :class:`SearchInputError` saying what to run.

    Returns:
        The service and the ``search_app`` parameters.
    """
    from kedro.io import DataCatalog

    settings, catalog_config = load_settings(conf_source, env)
    catalog = DataCatalog.from_config(catalog_config)
    data = settings.datasets
    generators = _load_generators(catalog, settings.models, models)
    table = _load_output(catalog, data.catalog, data)
    thumbnails = _load_output(catalog, data.thumbnails, data)["images"]
    service = SearchService(
        generators,
        _load_output(catalog, data.embedder, data),
        _load_output(catalog, data.index, data),
        Catalog(table, thumbnails),
        SearchSettings.from_params(settings.query),
    )
    return service, settings


def _load_output(catalog, name: str, data: SearchDatasets) -> Any:
    """A dataset the service needs, or a one-line error saying what to run to make it."""
    from kedro.io import DatasetError

    if not catalog.exists(name):
        producer = (
            "train the conditional GAN first (make train)"
            if name == data.embedder
            else "build the index first (kedro run --pipelines=search_index)"
        )
        raise SearchInputError(f"{name} does not exist yet: {producer}")
    try:
        return catalog.load(name)
    except DatasetError as err:
        raise SearchInputError(one_line(err)) from err


def _load_generators(
    catalog, available: dict[str, str], wanted: list[str] | None
) -> dict[str, torch.nn.Module]:
    """The generators named in ``search_app.models`` (only ``wanted`` ones when given)."""
    from kedro.io import DatasetError

    unknown = sorted(set(wanted or ()) - set(available))
    if unknown:
        raise SearchInputError(f"unknown model {unknown[0]!r}; available: {list(available)}")
    generators = {}
    for name, dataset in available.items():
        if wanted and name not in wanted:
            continue
        try:
            generators[name] = catalog.load(dataset)
        except DatasetError as err:
            log.warning("model %s (%s) skipped: %s", name, dataset, one_line(err))
    if not generators:
        raise SearchInputError(
            f"no generator found among {list(available.values())}: train one first (make train)"
        )
    return generators
