"""Building the search service from the project: the ``search_app`` settings and the catalog
entries they name (run from the project root, as ``kedro run`` reads them)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from fashiongan.config import ConfigError, SearchAppParams, SearchDatasets, parse_block
from fashiongan.errors import one_line
from fashiongan.generation import GenerationError, load_generator
from fashiongan.search.catalog import Catalog
from fashiongan.search.contract import SearchInputError
from fashiongan.search.service import SearchService
from fashiongan.text.loading import TextModelNotFoundError

log = logging.getLogger(__name__)


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
    embedder, or a text encoder folder with a file missing or damaged, is a one-line
    :class:`SearchInputError` saying what to do (the CLI and the app exit 2 on it).

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
    thresholds = _load_thresholds(catalog, data.attributes)
    embedder = _load_output(catalog, data.embedder, data)
    index = _load_output(catalog, data.index, data)
    try:  # the service loads the default generator's text encoder, its folder checked whole
        service = SearchService(
            generators,
            embedder,
            index,
            Catalog.measured(table, thumbnails, thresholds),
            settings.query,
            title_vectors=_load_title_vectors(catalog, data.title_vectors, len(table)),
            attribute_thresholds=thresholds,
            max_conversations=settings.max_conversations,
        )
    except (TextModelNotFoundError, GenerationError) as err:
        raise SearchInputError(str(err)) from err
    return service, settings


def _load_title_vectors(catalog, name: str, n_items: int) -> torch.Tensor | None:
    """The titles' text vectors the index pipeline stored, or None (the service encodes them)
    when they are missing or belong to another catalog."""
    if not catalog.exists(name):
        return None
    vectors = catalog.load(name)["vectors"]
    if len(vectors) != n_items:  # an index rebuilt without its titles
        log.warning("%s does not match the catalog: encoding the titles", name)
        return None
    return vectors


def _load_thresholds(catalog, name: str) -> dict[str, torch.Tensor] | None:
    """The attribute cut points, or None (with a warning): references then keep unknown
    attributes, and "darker" from an unknown tone lands on dark."""
    from kedro.io import DatasetError

    try:
        return catalog.load(name) if catalog.exists(name) else None
    except DatasetError as err:
        log.warning("attribute thresholds %s unreadable (%s): not measuring", name, one_line(err))
        return None


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
    """The generators named in ``search_app.models`` (only ``wanted`` ones when given); a wanted
    registry URI (``models:/fashiongan-conditional@champion``) or model folder/file is loaded
    from there, under that name."""
    from kedro.io import DatasetError

    located = [w for w in wanted or () if is_model_location(w)]
    unknown = sorted(set(wanted or ()) - set(available) - set(located))
    if unknown:
        raise SearchInputError(
            f"unknown model {unknown[0]!r}; available: {list(available)}, a model folder or a "
            "registry URI (models:/fashiongan-conditional@champion)"
        )
    generators = {location: _generator_at(location) for location in located}
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


def is_model_location(model: str) -> bool:
    """A registry URI or a path, rather than a name under ``search_app.models``."""
    return model.startswith("models:/") or "/" in model or model.endswith(".safetensors")


def _generator_at(location: str) -> torch.nn.Module:
    """The generator of a ``models:/`` URI (:func:`fashiongan.registry.resolve_model_dir`), a
    model folder (its generator.safetensors) or a generator file."""
    from fashiongan.registry import resolve_model_dir

    try:
        folder = resolve_model_dir(location)
    except ValueError as err:  # ModelNotFoundError: names what exists
        raise SearchInputError(one_line(err)) from err
    path = folder if folder.suffix == ".safetensors" else folder / "generator.safetensors"
    try:
        return load_generator(path)
    except GenerationError as err:
        raise SearchInputError(str(err)) from err
