"""Signals: SIGTERM stops a run the way Ctrl-C does, and training holds both until a step ends."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any


class RunInterrupted(KeyboardInterrupt):
    """SIGTERM (a scheduler's stop, ``kill``, a closing terminal), raised like Ctrl-C.

    A KeyboardInterrupt rather than an Exception: nodes and libraries that catch ``Exception`` let
    it through, so the run unwinds to the top exactly as Ctrl-C does.
    """

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")


def raise_interrupted(signum: int, frame: Any) -> None:
    """The SIGTERM handler while a pipeline runs."""
    raise RunInterrupted(signum)


def signal_number(err: KeyboardInterrupt) -> int:
    """The signal that stopped the run: SIGTERM for :class:`RunInterrupted`, else Ctrl-C."""
    return int(getattr(err, "signum", signal.SIGINT))


def sigterm_interrupts() -> bool:
    """From now on SIGTERM raises :class:`RunInterrupted` (main thread only); True if it does.

    A handler someone else installed is left alone; ours, left by an earlier interrupted run in
    this process (a notebook), is reclaimed. :func:`sigterm_default` undoes it.
    """
    on_main_thread = threading.current_thread() is threading.main_thread()
    if not on_main_thread or signal.getsignal(signal.SIGTERM) not in (
        signal.SIG_DFL,
        raise_interrupted,
    ):
        return False
    signal.signal(signal.SIGTERM, raise_interrupted)
    return True


def sigterm_default() -> None:
    """SIGTERM ends the process again (the pipeline is over)."""
    if signal.getsignal(signal.SIGTERM) is raise_interrupted:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextlib.contextmanager
def signals_between_steps(single_process: bool) -> Iterator[Callable[[], None]]:
    """Hold Ctrl-C and SIGTERM until the step ends; yields the check the loop runs between steps.

    A signal that lands inside a step interrupts whatever runs then, MLflow's SQLite writes
    included (a locked store, a traceback from SQLAlchemy). Held, it is delivered by calling the
    handler it would have reached, once the step and its checkpoint are done; a second signal
    is not held. Only handlers written in Python are held (an ignored or default SIGTERM stays
    as it was), only on the main thread of a single process (``single_process``): under
    torchrun the ranks could stop at different steps.
    """
    held: list[int] = []
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread() and single_process:
        previous = {
            signum: handler
            for signum in (signal.SIGINT, signal.SIGTERM)
            if callable(handler := signal.getsignal(signum))
        }

    def hold(signum: int, frame: Any) -> None:
        if held:  # asked twice: stop now
            previous[signum](signum, frame)
        held.append(signum)

    def deliver() -> None:
        if held:
            previous[held[0]](held[0], None)

    for signum in previous:
        signal.signal(signum, hold)
    try:
        yield deliver
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    deliver()  # one that came after the last step's check
