"""Log a trained model's folder to its MLflow run as a pyfunc from code, and register it.

Called once a training pipeline's run ends (:class:`fashiongan.hooks.RunNamingHook`), for each
``models/<family>/<variant>/`` folder the pipeline wrote. The folder's files (safetensors with
their class and config, the text encoder's folder and settings) are the pyfunc's one artifact,
``model_files``; :func:`fashiongan.registry.resolve_model_dir` gives them back as a folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from fashiongan.registry import FAMILIES, MODEL_FILES, registered_name

#: The file MLflow runs to build the model (models from code: nothing is pickled).
PYFUNC_CODE = Path(__file__).with_name("pyfunc_model.py")
#: What the pyfunc needs installed besides this project (pinned to what it was logged with).
REQUIREMENTS = ("torch", "safetensors", "transformers", "pillow", "pandas", "mlflow")


def model_folders(paths: Iterable[Path], models_root: Path) -> dict[str, Path]:
    """The family → model folder of each written file under ``models/<family>/…``.

    ``models/conditional/tuned/generator.safetensors`` → ``conditional``:
    ``models/conditional/tuned``. Only the registered families count (the plain autoencoders
    are not served); a file straight in ``models/<family>/`` (the old layout) names that folder.
    """
    folders: dict[str, Path] = {}
    for path in paths:
        try:
            parts = path.resolve().relative_to(models_root.resolve()).parts
        except ValueError:
            continue
        if len(parts) >= 2 and parts[0] in FAMILIES:
            folder = (
                models_root / parts[0] / parts[1] if len(parts) >= 3 else models_root / parts[0]
            )
            folders.setdefault(parts[0], folder if folder.is_dir() else path.parent)
    return folders


def weights_digest(folder: Path) -> str | None:
    """The SHA-256 of the main weights' tensors, as written in their safetensors metadata (the
    evaluation computes the same from the loaded model to find the version it scored)."""
    from safetensors import safe_open

    from fashiongan.datasets.safetensors import DIGEST_KEY

    for name in ("generator.safetensors", "evaluator.safetensors", "image.safetensors"):
        if (folder / name).is_file():
            with safe_open(str(folder / name), framework="pt") as handle:
                return (handle.metadata() or {}).get(DIGEST_KEY)
    return None


def _requirements() -> list[str]:
    pins = []
    for name in REQUIREMENTS:
        try:
            pins.append(f"{name}=={version(name).split('+')[0]}")
        except PackageNotFoundError:
            pins.append(name)
    return pins


def signature_and_example(folder: Path) -> tuple[Any, Any]:
    """The pyfunc's signature and input example: text (+ optional image bytes) → images for a
    generator folder, image bytes → class probabilities for a classifier."""
    import pandas as pd
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema, TensorSpec

    from fashiongan.datasets.safetensors import load_module
    from fashiongan.models.conditional_gan import ConditionalGenerator

    generator = folder / "generator.safetensors"
    if generator.is_file():
        model = load_module(generator)
        c = model.config
        text = "a dark ankle boot" if isinstance(model, ConditionalGenerator) else ""
        signature = ModelSignature(
            inputs=Schema([ColSpec("string", "text"), ColSpec("binary", "image", required=False)]),
            outputs=Schema([TensorSpec(np.dtype(np.uint8), (-1, -1, c.image_size, c.image_size, c.channels))]),
            params=ParamSchema([ParamSpec("n", "long", 4), ParamSpec("seed", "long", 0)]),
        )  # fmt: skip
        return signature, (pd.DataFrame({"text": [text]}), {"n": 2, "seed": 0})
    signature = ModelSignature(
        inputs=Schema([ColSpec("binary", "image")]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, -1))]),
    )
    return signature, pd.DataFrame({"image": [_blank_png()]})


def _blank_png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (28, 28)).save(buffer, format="PNG")
    return buffer.getvalue()


def log_and_register(family: str, folder: Path, tags: dict[str, str], register: bool = True):
    """Log ``folder`` to the active run as the pyfunc ``<family>``; register a new version of
    ``fashiongan-<family>`` carrying ``tags`` (environment, variant, source folder).

    Returns:
        The registered ``ModelVersion`` (None when ``register`` is off).
    """
    import mlflow

    from fashiongan.registry.champion import WEIGHTS_TAG

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no bars in the log
    if digest := weights_digest(folder):
        tags = {**tags, WEIGHTS_TAG: digest}
    signature, example = signature_and_example(folder)
    info = mlflow.pyfunc.log_model(
        name=family,
        python_model=str(PYFUNC_CODE),
        artifacts={MODEL_FILES: str(folder)},
        signature=signature,
        input_example=example,
        pip_requirements=_requirements(),
    )
    if not register:
        return None
    return mlflow.register_model(info.model_uri, registered_name(family), tags=tags)
