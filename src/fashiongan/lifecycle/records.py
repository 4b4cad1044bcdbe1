"""MLflow run status: a run says how it ended, and one whose process died is found and closed.

kedro-mlflow ends a run FINISHED after the pipeline and FAILED on an exception. Ctrl-C and SIGTERM
reach no Kedro hook, so :class:`RunWatch` ends the run KILLED as the process leaves. SIGKILL
leaves nothing to run at all: every run is tagged with the process that owns it, and the next
start of the same variant closes, as KILLED, the runs whose process is gone
(:func:`close_orphans`).
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import sqlite3
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import psutil

from fashiongan.errors import causes

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Tags naming the process that owns a run (host, pid, the pid's start time, epoch seconds).
HOST_TAG, PID_TAG, STARTED_TAG = "fashiongan.host", "fashiongan.pid", "fashiongan.pid_started"
#: On a run that closed orphans of its variant: their run ids, comma-separated.
TAKES_OVER_TAG = "fashiongan.takes_over"
#: The tags that make two runs the same training (see :mod:`fashiongan.registry.run_tags`).
VARIANT_TAGS = (
    "fashiongan.pipeline",
    "fashiongan.namespace",
    "fashiongan.run_name",
    "fashiongan.kedro_env",
)
_BUSY = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}


def store_busy(err: BaseException) -> bool:
    """Whether ``err`` is SQLite saying another writer holds the store (by its error code)."""
    return any(getattr(e, "sqlite_errorcode", None) in _BUSY for e in causes(err))


def while_store_busy(write: Callable[[], T], attempts: int = 4) -> T:
    """Call ``write``, retrying while SQLite says the store is busy (3.5 s of pauses, plus
    SQLite's own wait per attempt).

    A run's last record is written as the process dies; another process writing to the
    embedded store (a second run, the MLflow UI) can hold its lock past SQLite's wait on a busy
    disk, and losing this write would leave the run RUNNING.
    """
    for attempt in range(attempts):
        try:
            return write()
        except Exception as error:
            if not store_busy(error) or attempt == attempts - 1:
                raise
            time.sleep(0.5 * 2**attempt)
    raise AssertionError("unreachable")  # the loop returns or raises


def process_tags() -> dict[str, str]:
    """The tags that name this process, so a later run can tell whether it is still alive."""
    started = psutil.Process().create_time()
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid()), STARTED_TAG: f"{started}"}


def process_gone(tags: Mapping[str, str]) -> bool:
    """Whether the process the tags name is provably gone: it ran on this host and its pid is
    free or now belongs to a process started at another time. Runs from other hosts, or
    without these tags, are never judged gone."""
    if tags.get(HOST_TAG) != socket.gethostname() or PID_TAG not in tags:
        return False
    try:
        started = psutil.Process(int(tags[PID_TAG])).create_time()
    except psutil.NoSuchProcess:
        return True
    return abs(started - float(tags.get(STARTED_TAG, "nan"))) > 1e-3 or STARTED_TAG not in tags


def close_orphans(client: Any, run: Any, variant: Mapping[str, str]) -> list[str]:
    """End KILLED every RUNNING run of ``run``'s experiment and ``variant`` (its
    :data:`VARIANT_TAGS`) whose process is gone.

    Each one is logged with the run that takes over (``run``, an MLflow ``RunInfo``); their ids
    go on ``run`` as :data:`TAKES_OVER_TAG`. Returns them, oldest first.
    """
    variant = {key: variant.get(key, "") for key in VARIANT_TAGS}
    found = while_store_busy(
        lambda: client.search_runs(
            [run.experiment_id],
            filter_string="attributes.status = 'RUNNING'",
            order_by=["attributes.start_time ASC"],
        )
    )
    orphans = [
        other
        for other in found
        if other.info.run_id != run.run_id
        and {key: other.data.tags.get(key, "") for key in VARIANT_TAGS} == variant
        and process_gone(other.data.tags)
    ]
    for orphan in orphans:
        while_store_busy(lambda o=orphan: client.set_terminated(o.info.run_id, "KILLED"))
        log.warning(
            "MLflow run %s (%s) was left RUNNING by process %s, which is gone: marked KILLED; "
            "run %s takes over from it",
            orphan.info.run_id,
            orphan.info.run_name,
            orphan.data.tags.get(PID_TAG),
            run.run_id,
        )
    if orphans:
        ids = ",".join(o.info.run_id for o in orphans)
        while_store_busy(lambda: client.set_tag(run.run_id, TAKES_OVER_TAG, ids))
    return [o.info.run_id for o in orphans]


class RunWatch:
    """The MLflow run this process's pipeline opened, ended KILLED if the process leaves first.

    :meth:`start` registers :meth:`end_killed` at interpreter exit (once): after MLflow's own
    handler, so it runs before it, which would record Ctrl-C as FINISHED.
    """

    def __init__(self) -> None:
        self._run_id: str | None = None
        self._registered = False

    def start(self, run_id: str) -> None:
        """Watch ``run_id`` until :meth:`stop`."""
        self._run_id = run_id
        if not self._registered:
            atexit.register(self.end_killed)
            self._registered = True

    def stop(self) -> None:
        """The pipeline ended (kedro-mlflow records how): nothing left to do at exit."""
        self._run_id = None

    def end_killed(self) -> str | None:
        """End the watched run KILLED if it is still open; return its id (else None).

        Runs that the pipeline finished or that failed are already closed and left alone.
        """
        run_id, self._run_id = self._run_id, None
        if run_id is None:
            return None
        import mlflow

        active = mlflow.active_run()
        if active is not None and active.info.run_id == run_id:  # the usual case: end it here
            while_store_busy(lambda: mlflow.end_run(status="KILLED"))
            return run_id
        client = mlflow.MlflowClient()  # not this thread's active run: end it by id only
        if while_store_busy(lambda: client.get_run(run_id).info.status) == "RUNNING":
            while_store_busy(lambda: client.set_terminated(run_id, "KILLED"))
        return run_id


def forget_kedro_mlflow_run() -> None:
    """Clear the run id kedro-mlflow's process-wide hook kept from an earlier session.

    kedro-mlflow 2.0.3 (``MlflowHook.before_pipeline_run``) sets ``run_id`` only for a tracked
    pipeline and never clears it, and ``before_node_run`` reopens that run for every node: an
    untracked pipeline (ingestion) run later in the same process would reopen a finished run,
    and fail once its store is gone. It offers no API for this; remove the workaround when
    ``tests/test_lifecycle.py::test_kedro_mlflow_still_keeps_a_stale_run_id`` fails.
    """
    from kedro_mlflow.framework.hooks.mlflow_hook import mlflow_hook

    mlflow_hook.run_id = None
