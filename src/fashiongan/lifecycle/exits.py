"""How a run ends for the shell: an exit code that means something, and one line to act on.

Failures are recognised by their type (and SQLite's error code), never by their text: Kedro's
configuration and dataset errors, YAML syntax, the run refusals of :mod:`.variant_lock`, and an
MLflow store that is locked, corrupt or unreachable are the user's to fix (exit 2, the line says
how); anything else is a bug (exit 1). The caller keeps the traceback in a file.
"""

from __future__ import annotations

import enum
import importlib.resources
import signal
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from fashiongan.errors import causes, flatten, one_line
from fashiongan.lifecycle.records import store_busy
from fashiongan.lifecycle.variant_lock import RunRefused

_CORRUPT = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}
_CANNOT_OPEN = {sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY}


class ExitCode(enum.IntEnum):
    """What ``kedro run`` (and every ``fashiongan`` command) exits with."""

    OK = 0
    BUG = 1  #: not the user's doing: the traceback file is for a developer
    USER = 2  #: bad input, configuration or environment: the line says what to do
    SIGNALLED = 128  #: stopped by signal N: 128 + N, as a shell reports it


def interrupted(signum: int) -> tuple[str, int]:
    """The line and exit code of a run stopped by ``signum`` (its checkpoint kept)."""
    line = (
        f"stopped by {signal.Signals(signum).name}: the last checkpoint is kept; "
        "run the same command to resume"
    )
    return line, ExitCode.SIGNALLED + signum


def user_line(
    err: BaseException, pipelines: Sequence[str] = (), namespaces: Sequence[str] = ()
) -> str | None:
    """The line for a failure the user caused, or None when it is a bug.

    Args:
        err: what the run raised.
        pipelines, namespaces: the ones the command asked for (to name unknown ones).
    """
    from kedro.config import BadConfigException, MissingConfigException
    from kedro.io import DatasetError

    chain = causes(err)
    for explain in (_refused, _yaml_syntax, _mlflow_store):
        if (line := explain(chain)) is not None:
            return line
    if (line := _unknown_pipeline(err, pipelines)) is not None:
        return line
    if (line := _unknown_namespace(err, pipelines, namespaces)) is not None:
        return line
    if any(
        isinstance(e, DatasetError | MissingConfigException | BadConfigException) for e in chain
    ):
        return one_line(err)
    return None


def _refused(chain: list[BaseException]) -> str | None:
    return next((str(e) for e in chain if isinstance(e, RunRefused)), None)


def _yaml_syntax(chain: list[BaseException]) -> str | None:
    """Kedro names the file and position; the YAML parser's cause says what it expected."""
    import yaml

    errors = [e for e in chain if isinstance(e, yaml.YAMLError)]
    if not errors:
        return None
    problem = next((e.problem for e in errors if getattr(e, "problem", None)), None)
    where = flatten(str(errors[0])).rstrip(".")
    detail = f" ({flatten(problem)})" if problem and problem not in where else ""
    return f"{where}{detail}: fix the YAML syntax there and run again"


def _mlflow_store(chain: list[BaseException]) -> str | None:
    """A locked, corrupt, unopenable or unreachable MLflow store, by error code and type."""
    import requests

    store = _shown_store()
    for e in chain:
        code = getattr(e, "sqlite_errorcode", None)
        if store_busy(e):
            return (
                f"the MLflow store {store} is locked by another writer (another run, or the "
                "MLflow UI): wait for it to finish, then run again"
            )
        if code in _CORRUPT:
            return (
                f"the MLflow store {store} is corrupt ({e}): restore a copy, or move it aside "
                "(mv it to another name) so that the next run starts a new one"
            )
        if code in _CANNOT_OPEN:
            return f"the MLflow store {store} cannot be opened for writing ({e}): check its folder"
        if isinstance(e, requests.exceptions.ConnectionError):
            return (
                f"the MLflow server {store} cannot be reached: start it, or point "
                "server.mlflow_tracking_uri in conf/<env>/mlflow.yml at one that runs"
            )
    return None


def _shown_store() -> str:
    """The tracking URI in use; an SQLite file as a path (relative to here when below it)."""
    import mlflow

    uri = mlflow.get_tracking_uri()
    if not uri.startswith("sqlite:///"):
        return uri
    path = Path(uri.removeprefix("sqlite:///"))
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def _pipeline_folders() -> list[str]:
    from kedro.framework.project import PACKAGE_NAME

    folder = importlib.resources.files(f"{PACKAGE_NAME}.pipelines")
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name[0] not in "._")


def _unknown_pipeline(err: BaseException, pipelines: Sequence[str]) -> str | None:
    """Kedro 1.7 reports ``--pipelines=nope`` as an ImportError with no cause (nothing was there
    to import); name the pipelines there are instead."""
    if not isinstance(err, ImportError) or err.__cause__ is not None:
        return None
    have = ["__default__", *_pipeline_folders()]
    missing = [name for name in pipelines if name not in have]
    return f"no pipeline {missing[0]!r} (have: {', '.join(have)})" if missing else None


def _unknown_namespace(
    err: BaseException, pipelines: Sequence[str], namespaces: Sequence[str]
) -> str | None:
    """``--namespaces=nope`` (Kedro raises a plain ValueError): name the namespaces there are."""
    if not isinstance(err, ValueError) or not namespaces:
        return None
    from kedro.framework.project import pipelines as registered

    names = list(pipelines) or ["__default__"]
    have = sorted(
        {n.namespace.split(".")[0] for name in names for n in registered[name].nodes if n.namespace}
    )
    missing = [ns for ns in namespaces if ns.split(".")[0] not in have]
    if not missing:
        return None
    return (
        f"no namespace {', '.join(map(repr, missing))} in pipeline "
        f"{', '.join(names)} (have: {', '.join(have) or 'none'})"
    )
