"""The base of the project's file datasets (path, description, existence) and one Kedro fix."""

from __future__ import annotations

import inspect
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from kedro.io import AbstractDataset

_DI = TypeVar("_DI")
_DO = TypeVar("_DO")


class InheritedInitArguments:
    """Mixin for Kedro datasets whose subclasses inherit ``__init__``: record the real arguments.

    Kedro wraps every dataset subclass's ``__init__`` to record its arguments (``_init_args``,
    read by ``DataCatalog.to_config``). A subclass without an ``__init__`` of its own would get
    the *wrapped* inherited one wrapped again and record ``{"args": …, "kwargs": …}``; this
    hands Kedro the plain function instead. Put it first among the bases.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        if "__init__" not in cls.__dict__:
            cls.__init__ = inspect.unwrap(cls.__init__)  # type: ignore[method-assign]
        super().__init_subclass__(**kwargs)


class FileDataset(InheritedInitArguments, AbstractDataset[_DI, _DO]):
    """A dataset stored at one path (a file, or a folder where a subclass says so).

    Subclasses write ``load`` and ``save`` and inherit ``__init__(filepath, metadata)``,
    ``_describe`` (the path, which kedro-viz and ``kedro catalog`` show) and ``_exists``
    (the file is there).
    """

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = PurePosixPath(filepath)
        self.metadata = metadata

    @property
    def path(self) -> Path:
        """Where the data lives, as a local path."""
        return Path(self._filepath)

    @property
    def shown_path(self) -> str:
        """The path for messages: relative to the working directory when it lies inside it.

        Kedro makes catalog paths absolute; the user wrote ``data/…`` and runs from the project
        root, so that is how an error should name the file.
        """
        try:
            return self.path.relative_to(Path.cwd()).as_posix()
        except ValueError:
            return str(self.path)

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}

    def _exists(self) -> bool:
        return self.path.is_file()
