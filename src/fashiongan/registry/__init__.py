"""The MLflow Model Registry as a source of model folders: ``models:/<name>@<alias>`` or
``models:/<name>/<version>`` → a local folder with the same files as ``models/<family>/<variant>/``.

Every trained model is registered as ``fashiongan-<family>`` (one version per training run); the
evaluation pipeline sets the alias ``champion``. The app, ``fashiongan generate``, search and
evaluation call :func:`resolve_model_dir` so that a path and a registry URI work alike.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

#: The model families, each registered as ``fashiongan-<family>``.
FAMILIES = ("baseline", "conditional", "vae", "evaluator", "classifier")
#: The pyfunc artifact (a folder) that holds the model's files as ``models/<family>/<variant>/``.
MODEL_FILES = "model_files"
#: Where registered versions are downloaded (a version never changes, so once is enough).
CACHE_ENV = "FASHIONGAN_MODEL_CACHE"

_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>\d+))$")


class ModelNotFoundError(ValueError):
    """No such registered model, alias or version (one line naming what exists)."""


@dataclass(frozen=True)
class ModelRef:
    """A parsed ``models:/`` URI: a name and either an alias or a version."""

    name: str
    alias: str | None = None
    version: str | None = None

    def __str__(self) -> str:
        return f"models:/{self.name}" + (f"@{self.alias}" if self.alias else f"/{self.version}")


def registered_name(family: str) -> str:
    """``conditional`` → ``fashiongan-conditional``."""
    return f"fashiongan-{family}"


def is_model_uri(value: str | Path) -> bool:
    return isinstance(value, str) and value.startswith("models:/")


def parse_model_uri(uri: str) -> ModelRef:
    """``models:/fashiongan-conditional@champion`` → ModelRef; anything else is refused."""
    match = _URI.match(uri.strip())
    if match is None:
        raise ModelNotFoundError(
            f"{uri!r} is not a registry URI: use models:/<name>@<alias> or models:/<name>/<version>"
        )
    return ModelRef(match["name"], match["alias"], match["version"])


def project_tracking_uri() -> str:
    """The store models are registered in: ``MLFLOW_TRACKING_URI`` or one set in this process
    (kedro-mlflow sets it from ``conf/<env>/mlflow.yml``), else the project root's ``mlflow.db``
    (the same root ``${project_root:}`` gives the catalog: a DVC experiment's temporary copy
    resolves to the real project)."""
    import mlflow
    from mlflow.tracking._tracking_service.utils import is_tracking_uri_set

    if is_tracking_uri_set():
        return mlflow.get_tracking_uri()
    from fashiongan.settings import project_root

    return f"sqlite:///{Path(project_root()) / 'mlflow.db'}"


def resolve_model_dir(uri_or_path: str | Path, tracking_uri: str | None = None) -> Path:
    """A model folder: a local path as given; a ``models:/`` URI downloaded from the registry.

    Args:
        uri_or_path: ``models/conditional/default``, ``models:/fashiongan-conditional@champion``
            or ``models:/fashiongan-conditional/3``.
        tracking_uri: the MLflow store (default: :func:`project_tracking_uri`).

    Raises:
        ModelNotFoundError: an unknown name, alias or version, with what exists.
    """
    if not is_model_uri(uri_or_path):
        return Path(uri_or_path)
    ref = parse_model_uri(str(uri_or_path))
    import mlflow

    store = tracking_uri or project_tracking_uri()
    client = mlflow.MlflowClient(tracking_uri=store, registry_uri=store)
    version = _model_version(client, ref)
    cache = Path(os.environ.get(CACHE_ENV) or Path(tempfile.gettempdir()) / "fashiongan-models")
    # keyed by the version's source too: a store made anew numbers its versions from 1 again
    target = (
        cache / _short_hash(store) / ref.name / f"{version.version}-{_short_hash(version.source)}"
    )
    if not (target / "MLmodel").is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".download-"))
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one line out
        local = mlflow.artifacts.download_artifacts(  # where the files are: no second lookup
            artifact_uri=client.get_model_version_download_uri(ref.name, str(version.version)),
            dst_path=str(staging),
            tracking_uri=store,
        )
        _replace(Path(local), target)
        shutil.rmtree(staging, ignore_errors=True)
    folder = _model_files(target)
    if folder is None:
        raise ModelNotFoundError(
            f"{ref} (version {version.version}) holds no fashiongan model files"
        )
    return folder


def _model_files(model: Path) -> Path | None:
    """The ``model_files`` artifact's folder in a downloaded pyfunc (MLflow names it after the
    logged folder: ``artifacts/<variant>``), read from its ``MLmodel``."""
    import yaml

    flavors = yaml.safe_load((model / "MLmodel").read_text()).get("flavors", {})
    artifacts = flavors.get("python_function", {}).get("artifacts") or {}
    path = (artifacts.get(MODEL_FILES) or {}).get("path")
    return model / path if path and (model / path).is_dir() else None


def _model_version(client, ref: ModelRef):
    """The registry entry ``ref`` names, or one line naming the names/aliases/versions there are."""
    from mlflow.exceptions import MlflowException

    try:
        model = client.get_registered_model(ref.name)
    except MlflowException:
        names = sorted(m.name for m in client.search_registered_models())
        raise ModelNotFoundError(
            f"no registered model {ref.name!r} (have: {', '.join(names) or 'none'})"
        ) from None
    try:
        if ref.alias is not None:
            return client.get_model_version_by_alias(ref.name, ref.alias)
        return client.get_model_version(ref.name, ref.version)
    except MlflowException:
        versions = client.search_model_versions(f"name='{ref.name}'")
        numbers = sorted(int(v.version) for v in versions)
        aliases = sorted(model.aliases or {})
        raise ModelNotFoundError(
            f"no {ref} (versions: {', '.join(map(str, numbers)) or 'none'}; "
            f"aliases: {', '.join(aliases) or 'none'})"
        ) from None


def _short_hash(text: str) -> str:
    """A short folder name for a store or a model source, so that two projects' (or two
    incarnations of one store's) version 1 never share a cache entry."""
    import hashlib

    return hashlib.sha256(str(text).encode()).hexdigest()[:12]


def _replace(staging: Path, target: Path) -> None:
    """Move a finished download into place (a half-written one is never used)."""
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
