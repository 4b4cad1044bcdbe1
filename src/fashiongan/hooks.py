"""Project hooks: every parameter block is checked before any work starts, and every run's end
is recorded truthfully in MLflow (FINISHED, FAILED, or KILLED by Ctrl-C / SIGTERM)."""

from __future__ import annotations

import atexit
import signal
import threading
from typing import Any

from kedro.framework.hooks import hook_impl
from pydantic import BaseModel

from fashiongan.config import parse_parameters


class ConfigHook:
    """Checks every parameter block (with ``--params`` applied) as soon as the context exists.

    This runs before the catalog is built, before MLflow opens a run and before any data loads,
    so a misspelt key or an out-of-range value fails in seconds with one line naming the key.
    Kedro then builds each node's typed ``params:`` inputs from the node's type hints
    (:mod:`fashiongan.config` models), which cannot fail once this check has passed.
    """

    @hook_impl(tryfirst=True)
    def after_context_created(self, context: Any) -> None:
        parse_parameters(dict(context.config_loader["parameters"]))

    @hook_impl(tryfirst=True)
    def before_node_run(self, inputs: dict[str, Any]) -> dict[str, Any] | None:
        """Show the other hooks each typed block as its plain dict; give the node the block.

        kedro-mlflow logs a node's ``params:`` inputs, flattened to one MLflow parameter per key
        (``baseline.training.batch_size``), only when they are dicts; a typed block would be
        logged as one long string. This hook runs first and swaps the dict form into the shared
        ``inputs`` the later hooks read; its return value hands the node the typed block again.
        """
        typed = {name: value for name, value in inputs.items() if isinstance(value, BaseModel)}
        for name, block in typed.items():
            inputs[name] = block.model_dump(mode="json")
        return typed or None


class RunInterrupted(KeyboardInterrupt):
    """SIGTERM (a scheduler's stop, ``kill``, a closing terminal), raised like Ctrl-C.

    A KeyboardInterrupt rather than an Exception: nodes and libraries that catch ``Exception`` let
    it through, so the run unwinds to the top exactly as Ctrl-C does.
    """

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")


_in_flight: dict[str, Any] = {}  # "run_id": the MLflow run this process's pipeline opened


def end_run_killed() -> str | None:
    """End the pipeline's MLflow run as KILLED if it is still open; return its id (else None).

    Called at interpreter exit (registered by :class:`RunRecordHook`) and safe to call earlier,
    e.g. by a CLI that catches ``KeyboardInterrupt``. Runs that the pipeline finished or that
    failed are already closed (FINISHED / FAILED) and left alone, as is a run opened before
    the session (kedro-mlflow does not own it).
    """
    run_id = _in_flight.pop("run_id", None)
    if run_id is None:
        return None
    import mlflow

    active = mlflow.active_run()
    if active is not None and active.info.run_id == run_id:  # the usual case: end it here
        mlflow.end_run(status="KILLED")
        return run_id
    client = mlflow.MlflowClient()  # not this thread's active run: end it by id, touch nothing else
    if client.get_run(run_id).info.status == "RUNNING":
        client.set_terminated(run_id, "KILLED")
    return run_id


def _raise_interrupted(signum: int, frame: Any) -> None:
    raise RunInterrupted(signum)


class RunRecordHook:
    """Makes the MLflow record of a run say how it ended: FINISHED, FAILED, or KILLED.

    kedro-mlflow ends the run FINISHED after the pipeline and FAILED on an exception, but Kedro
    calls no hook for a ``KeyboardInterrupt``: MLflow's own exit handler then recorded Ctrl-C as
    FINISHED, and SIGTERM (which killed the process outright) left the run RUNNING forever.
    While a pipeline runs this hook turns SIGTERM into :class:`RunInterrupted` and remembers the
    run; if the process leaves without the pipeline finishing or failing, the run is ended
    KILLED at exit. Checkpoints are written atomically, so the last one survives either signal
    and the same command resumes from it.
    """

    def __init__(self) -> None:
        self._outer_run: str | None = None
        self._previous_sigterm: Any = None
        self._at_exit = False

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        """Note a run opened before the session: kedro-mlflow logs into it but does not end it."""
        import mlflow

        active = mlflow.active_run()
        self._outer_run = None if active is None else active.info.run_id

    @hook_impl(trylast=True)  # after kedro-mlflow's, which starts the run
    def before_pipeline_run(self) -> None:
        import mlflow

        active = mlflow.active_run()
        if active is not None and active.info.run_id != self._outer_run:
            _in_flight["run_id"] = active.info.run_id
            if not self._at_exit:
                atexit.register(end_run_killed)  # after MLflow's own handler: runs before it
                self._at_exit = True
        on_main_thread = threading.current_thread() is threading.main_thread()
        current = signal.getsignal(signal.SIGTERM)
        if on_main_thread and current in (signal.SIG_DFL, _raise_interrupted):
            # ours, left by an earlier interrupted run in this process (a notebook): reclaim it
            signal.signal(signal.SIGTERM, _raise_interrupted)
            self._previous_sigterm = signal.SIG_DFL

    @hook_impl(tryfirst=True)
    def after_pipeline_run(self) -> None:
        self._forget()

    @hook_impl(tryfirst=True)
    def on_pipeline_error(self) -> None:
        self._forget()

    def _forget(self) -> None:
        """The pipeline ended (kedro-mlflow records how): stop watching, restore SIGTERM."""
        _in_flight.pop("run_id", None)
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None
