"""Kedro dataset of a text encoder as trained beside the conditional GAN: a Hugging Face folder.

The folder (``config.json``, ``model.safetensors``, tokenizer files and the pooling settings)
loads with ``transformers.AutoModel`` like any BERT; the generator's config names it, so
inference encodes queries with the very layers the GAN was trained with.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from kedro.io import DatasetError

from fashiongan.datasets.base import FileDataset

log = logging.getLogger(__name__)


def _read_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


_UMASK = _read_umask()  # once, at import: os.umask is process-wide


class TextEncoderDataset(FileDataset[Any, Any]):
    """A :class:`~fashiongan.text.encoder.TextEncoder` saved as a folder.

    The new folder is written completely beside the old one, then swapped in by two renames:
    a crash, a kill or a full disk while writing leaves the previous encoder in place (only
    between the two renames is there no folder). Leftovers of an interrupted save
    (``.<name>.*`` beside it) are removed by the next save.

    Example catalog entry::

        "{namespace}.text_encoder":
          type: fashiongan.datasets.TextEncoderDataset
          filepath: models/{namespace}/text_encoder
    """

    def _exists(self) -> bool:
        from fashiongan.text.loading import SETTINGS_FILE

        return (self.path / SETTINGS_FILE).is_file()

    def load(self) -> Any:
        from fashiongan.text.encoder import TextEncoder
        from fashiongan.text.loading import TextModelNotFoundError

        folder = self.path
        if not folder.is_dir():
            raise DatasetError(f"{folder} does not exist: train the conditional GAN first.")
        try:
            return TextEncoder.from_saved(folder)
        except (TextModelNotFoundError, OSError, ValueError) as err:
            raise DatasetError(f"{folder} is not a readable text encoder: {err}") from err

    def save(self, data: Any) -> None:
        target = self.path
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            for stale in target.parent.glob(f".{target.name}.*"):  # an earlier save was killed
                shutil.rmtree(stale, ignore_errors=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        except OSError as err:
            raise DatasetError(f"could not write {target}: {err}") from err
        old = target.with_name(f"{staging.name}.old")
        try:
            data.save(staging)
            staging.chmod(0o777 & ~_UMASK)  # mkdtemp makes 0700 and safetensors 0600
            for file in staging.iterdir():
                file.chmod(0o666 & ~_UMASK)
            if target.exists():
                target.rename(old)
            staging.rename(target)
        except BaseException as err:
            if old.exists() and not target.exists():
                try:
                    old.rename(target)  # put the previous encoder back
                except OSError as restore_err:
                    log.error("could not restore %s from %s: %s", target, old, restore_err)
            shutil.rmtree(staging, ignore_errors=True)
            if isinstance(err, OSError):
                raise DatasetError(f"could not write {target}: {err}") from err
            raise
        shutil.rmtree(old, ignore_errors=True)
