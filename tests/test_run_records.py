"""Truthful run records: a `kedro run` stopped by Ctrl-C or SIGTERM is KILLED in MLflow (its last
checkpoint kept, the same command resumes it), a crash is FAILED, a completed run FINISHED.

Real processes and real signals: the training run is a `kedro run` child on the tiny data.
"""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import make_kedro_project, run_pipeline
from tests.scale.conftest import child_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

CHECKPOINTS = "data/06_models/checkpoints/records"
RUN = "train_gan.baseline"  # the MLflow run's name: pipeline.namespace
#: Runs long enough to be interrupted (iterations does not change the checkpoint fingerprint).
LONG = (
    f"baseline.training.checkpoint_dir={CHECKPOINTS},baseline.training.sample_every=0,"
    "baseline.training.iterations=100000"
)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny project whose model input exists (data_processing ran in-process)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        project = make_kedro_project(tmp_path_factory.mktemp("records"), monkeypatch)
        run_pipeline(project, ["data_processing"])
        yield project


def kedro_run(project: Path, params: str, log: Path) -> subprocess.Popen:
    """`kedro run` of the baseline GAN, its output to ``log`` (tqdm would fill a pipe).

    The child starts with SIGINT at its default, as a command typed at a terminal does: a suite
    launched in the background (``nohup``, ``&`` in a script) hands its children SIGINT ignored,
    and Python then never turns Ctrl-C into KeyboardInterrupt.
    """
    command = [sys.executable, "-m", "kedro", "run", "--pipelines=train_gan"]
    with log.open("w") as out:
        return subprocess.Popen(
            [*command, "--namespaces=baseline", "--params", params],
            cwd=project,
            env=child_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )


def checkpoint_steps(project: Path) -> list[int]:
    """The steps of the default variant's checkpoints (``<run_name>/<fingerprint>/ckpt-*``)."""
    names = (project / CHECKPOINTS).glob("default/*/ckpt-*.safetensors")
    return sorted(int(re.search(r"ckpt-(\d+)", p.name).group(1)) for p in names)


def wait_for_checkpoint_after(project: Path, process: subprocess.Popen, step: int) -> int:
    """Wait until the child has written a checkpoint past ``step``; return the newest step."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        steps = checkpoint_steps(project)
        if steps and steps[-1] > step:
            return steps[-1]
        time.sleep(0.2)
    process.kill()
    raise AssertionError(f"no checkpoint after step {step} (exit code {process.poll()})")


def statuses(project: Path) -> list[tuple[str, str]]:
    """(run name, status) of every MLflow run, oldest first, straight from the store."""
    with sqlite3.connect(project / "mlflow.db") as db:
        return db.execute("select name, status from runs order by start_time").fetchall()


def interrupt(project: Path, sig: signal.Signals, log: Path, after_step: int) -> int:
    """Start the long run, send ``sig`` after a fresh checkpoint; the newest step on disk."""
    process = kedro_run(project, LONG, log)
    wait_for_checkpoint_after(project, process, after_step)
    process.send_signal(sig)
    process.wait(timeout=60)
    output = log.read_text()
    assert process.returncode == 128 + sig, output[-3000:]
    assert "Training stopped at step" in output and "Traceback" not in output
    assert output.strip().splitlines()[-1] == (
        f"Error: stopped by {sig.name}: the last checkpoint is kept; run the same command to resume"
    )
    return checkpoint_steps(project)[-1]


def test_ctrl_c_and_sigterm_are_killed_and_the_same_command_resumes(project: Path, tmp_path):
    before = statuses(project)
    stopped = interrupt(project, signal.SIGINT, tmp_path / "sigint.log", after_step=0)
    assert statuses(project)[len(before) :] == [(RUN, "KILLED")]

    # The same command resumes from Ctrl-C's checkpoint; SIGTERM ends it KILLED too.
    stopped_again = interrupt(project, signal.SIGTERM, tmp_path / "sigterm.log", stopped)
    assert f"(step {stopped})" in (tmp_path / "sigterm.log").read_text()  # "Resumed from …"
    assert statuses(project)[len(before) :] == [(RUN, "KILLED")] * 2

    # Then to the end (iterations a little past the checkpoint: same fingerprint, so it resumes).
    final = stopped_again + 10
    finish = kedro_run(project, f"{LONG[: LONG.rindex('=')]}={final}", tmp_path / "end.log")
    assert finish.wait(timeout=120) == 0, (tmp_path / "end.log").read_text()[-3000:]
    output = (tmp_path / "end.log").read_text()
    assert re.search(rf"Resumed from \S+ckpt-0*{stopped_again}\.safetensors", output)
    assert checkpoint_steps(project)[-1] == final
    assert statuses(project)[len(before) :] == [(RUN, "KILLED")] * 2 + [(RUN, "FINISHED")]
    assert (project / "models/baseline/default/generator.safetensors").is_file()
    with sqlite3.connect(project / "mlflow.db") as db:
        commands = db.execute("select value from tags where key = 'fashiongan.command'").fetchall()
    expected = f"kedro run --pipelines=train_gan --namespaces=baseline --params {LONG[: LONG.rindex('=')]}={final}"
    assert (expected,) in commands  # as typed, with its namespace and parameters


def test_a_crash_is_failed(project: Path, tmp_path):
    """An absurd learning rate: a NaN loss at the first step stops the run, recorded FAILED."""
    before = statuses(project)
    params = (
        "baseline.training.checkpoint_dir=data/06_models/checkpoints/crash,"
        "baseline.training.d_lr=1e30,baseline.training.g_lr=1e30"
    )
    process = kedro_run(project, params, tmp_path / "crash.log")
    assert process.wait(timeout=120) == 1
    assert "became nan at step 0" in (tmp_path / "crash.log").read_text()
    assert statuses(project)[len(before) :] == [(RUN, "FAILED")]
