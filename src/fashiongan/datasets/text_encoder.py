"""Kedro dataset of a text encoder as trained beside the conditional GAN: a Hugging Face folder.

The folder (``config.json``, ``model.safetensors``, tokenizer files and the pooling settings)
loads with ``transformers.AutoModel`` like any BERT; the generator's config names it, so
inference encodes queries with the very layers the GAN was trained with.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from kedro.io import AbstractDataset, DatasetError


class TextEncoderDataset(AbstractDataset[Any, Any]):
    """A :class:`~fashiongan.text.encoder.TextEncoder` saved as a folder, replaced atomically.

    The new folder is written beside the old one and swapped in by renames, so a crash or a
    full disk while saving leaves the previous encoder in place.

    Example catalog entry::

        "{namespace}.text_encoder":
          type: fashiongan.datasets.TextEncoderDataset
          filepath: models/{namespace}/text_encoder
    """

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = PurePosixPath(filepath)
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}

    def _exists(self) -> bool:
        from fashiongan.text.encoder import SETTINGS_FILE

        return (Path(self._filepath) / SETTINGS_FILE).is_file()

    def load(self) -> Any:
        from fashiongan.text.encoder import TextEncoder, TextModelNotFoundError

        folder = Path(self._filepath)
        if not folder.is_dir():
            raise DatasetError(f"{folder} does not exist: train the conditional GAN first.")
        try:
            return TextEncoder.from_saved(folder)
        except (TextModelNotFoundError, OSError, ValueError) as err:
            raise DatasetError(f"{folder} is not a readable text encoder: {err}") from err

    def save(self, data: Any) -> None:
        target = Path(self._filepath)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        except OSError as err:
            raise DatasetError(f"could not write {target}: {err}") from err
        old = None
        try:
            data.save(staging)
            if target.exists():
                old = target.with_name(f".{target.name}.old-{staging.name}")
                target.rename(old)
            staging.rename(target)
        except BaseException as err:
            if old is not None and not target.exists():
                old.rename(target)  # put the previous encoder back
            shutil.rmtree(staging, ignore_errors=True)
            if isinstance(err, OSError):
                raise DatasetError(f"could not write {target}: {err}") from err
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        umask = _umask()  # mkdtemp makes 0700 and safetensors 0600: use the usual modes
        target.chmod(0o777 & ~umask)
        for file in target.iterdir():
            file.chmod(0o666 & ~umask)


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask
