"""The MLflow pyfunc of every fashiongan model, logged *from code* (no pickled objects).

MLflow copies this file into the logged model and runs it at load time; ``set_model`` hands it
the model object. Its one artifact, ``model_files``, is the model's folder as training wrote it
(``models/<family>/<variant>/``: safetensors with their class and config, the text encoder).

* A folder with ``generator.safetensors`` (baseline, conditional, VAE) draws images:
  a DataFrame with ``text`` (the query; empty for unconditional models) and an optional
  ``image`` (PNG/JPEG bytes, the reference of a composed query) → uint8 images
  (rows, n, H, W, C); parameters ``n`` (images a row) and ``seed``.
* The evaluator and the classifier (its image-only model) classify images: a DataFrame with
  ``image`` bytes → class probabilities (rows, n_classes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import torch

#: The image classifiers' weight files, in the order they are looked for.
CLASSIFIER_FILES = ("evaluator.safetensors", "image.safetensors")


class FashionGANModel(mlflow.pyfunc.PythonModel):
    """Draw images from a generator folder, or classify images with an evaluator/classifier."""

    def load_context(self, context) -> None:
        from fashiongan.datasets.safetensors import load_module

        folder = Path(context.artifacts["model_files"])
        if (folder / "generator.safetensors").is_file():  # a GAN's generator or the VAE's decoder
            self.kind, self.model = "generator", load_module(folder / "generator.safetensors")
            return
        weights = next((folder / f for f in CLASSIFIER_FILES if (folder / f).is_file()), None)
        if weights is None:
            raise FileNotFoundError(f"{folder} holds no generator or image classifier")
        self.kind, self.model = "classifier", load_module(weights).eval()

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> np.ndarray:
        rows = model_input.to_dict("records")
        if self.kind == "classifier":
            images = torch.cat([self._image(row.get("image")) for row in rows])
            with torch.no_grad():
                return torch.softmax(self.model(images), dim=1).numpy().astype(np.float32)
        from fashiongan.generation import generate
        from fashiongan.pixels import to_uint8

        params = params or {}
        n, seed = int(params.get("n", 4)), int(params.get("seed", 0))
        drawn = []
        for row in rows:
            text = row.get("text") or None
            reference = self._image(row.get("image")) if _present(row.get("image")) else None
            drawn.append(to_uint8(generate(self.model, n, seed, text, reference)).numpy())
        return np.stack(drawn)  # (rows, n, H, W, C) uint8

    def _image(self, data: Any) -> torch.Tensor:
        """PNG/JPEG bytes → (1, C, H, W) in [-1, 1] at the model's size."""
        from fashiongan.images import load_image

        config = self.model.config
        channels = getattr(config, "in_channels", None) or config.channels  # evaluator, else GAN
        return load_image(bytes(data), getattr(config, "image_size", 28), channels)


def _present(value: Any) -> bool:
    return (
        value is not None and not (isinstance(value, float) and np.isnan(value)) and len(value) > 0
    )


mlflow.models.set_model(FashionGANModel())
