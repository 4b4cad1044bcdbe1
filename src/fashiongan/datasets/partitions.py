"""A partitioned dataset that may be empty: models without a discriminator or an embedder.

It extends kedro-datasets' ``PartitionedDataset`` (a folder of many files, each loaded lazily by
another dataset): the folder, the description and the existence check are that class's, so
only :class:`~fashiongan.datasets.base.InheritedInitArguments` is mixed in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from kedro.io import DatasetError
from kedro_datasets.partitions import PartitionedDataset

from fashiongan.datasets.base import InheritedInitArguments

log = logging.getLogger(__name__)


class OptionalPartitionedDataset(InheritedInitArguments, PartitionedDataset):
    """``PartitionedDataset`` whose ``load`` returns ``{}`` instead of failing when nothing matches.

    For the evaluation's optional per-model files (``models/*/discriminator.safetensors``,
    ``models/*/embedder.safetensors``, ``data/08_reporting/*/training_history.csv``): a VAE has no
    discriminator and an unconditional GAN no embedder, and their absence is not an error.
    """

    def load(self) -> dict[str, Callable[[], Any]]:
        try:
            return super().load()
        except DatasetError as err:
            if "No partitions found" not in str(err):
                raise
            log.info("no '*%s' under %s: none to load", self._filename_suffix, self._path)
            return {}
