"""The shared training loop: Ctrl-C and SIGTERM stop it between steps, never inside one."""

import os
import signal

import pytest
import torch

from fashiongan.training.checkpoint import TrainingState
from fashiongan.training.loop import fit


@pytest.fixture(autouse=True)
def handlers():
    """Python's Ctrl-C handler and a raising SIGTERM one, as a terminal-run process has (a suite
    launched in the background inherits SIGINT ignored)."""

    def terminated(signum, frame):
        raise SystemExit(signum)

    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, terminated)
    yield
    for signum, handler in before.items():
        signal.signal(signum, handler)


def _fit(train_step, total_steps=10):
    model = torch.nn.Linear(1, 1)
    state = TrainingState({"m": model}, {}, torch.Generator())
    fit(
        state, train_step, total_steps=total_steps, log_every=100, checkpoint_every=100,
        checkpoint_dir=None, fingerprint="test",
    )  # fmt: skip
    return state


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_inside_a_step_stops_the_loop_after_that_step(sig):
    """The step that was running when the signal came (an MLflow write, say) finishes first."""
    raised = KeyboardInterrupt if sig == signal.SIGINT else SystemExit
    finished = []

    def step(i):
        if i == 3:
            os.kill(os.getpid(), sig)  # lands mid-step
        finished.append(i)  # still runs: the signal is held
        return {"loss": 1.0}

    with pytest.raises(raised):
        _fit(step)
    assert finished == [0, 1, 2, 3]  # stopped after step 3, before step 4
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_a_second_ctrl_c_stops_at_once():
    finished = []

    def step(i):
        if i == 2:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)  # asked twice: not held
        finished.append(i)
        return {"loss": 1.0}

    with pytest.raises(KeyboardInterrupt):
        _fit(step)
    assert finished == [0, 1]
