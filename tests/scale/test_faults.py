"""Real faults: a SIGKILLed training process, a second training of the same variant, a full disk
and a read-only filesystem.

tests/training covers an in-process "kill" (an exception between steps), a corrupt newest
checkpoint and NaN losses; tests/datasets and tests/pipelines/data_processing cover simulated
write errors and a truncated raw file. Here the kernel does it: SIGKILL to a separate process,
ENOSPC from a full tmpfs, EROFS from a read-only mount (as root, chmod would not stop a write).
"""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from kedro.io import DatasetError
from safetensors.torch import load_file

from fashiongan.config import overridden
from fashiongan.datasets import TensorDictDataset, TorchModelDataset
from fashiongan.models.mlp_gan import MLPGANConfig, MLPGenerator
from fashiongan.training.baseline import train_mlp_gan
from fashiongan.training.checkpoint import TrainingState, load_checkpoint
from tests.model_configs import mlp_config
from tests.scale._worker import BASELINE, train
from tests.scale.conftest import WORKER, finish, start
from tests.test_run_records import (
    CHECKPOINTS,
    RUN,
    checkpoint_steps,
    kedro_run,
    wait_for_checkpoint_after,
)
from tests.test_run_records import project as records_project  # noqa: F401 (a fixture)

pytestmark = pytest.mark.timeout(300)
WORKER_CMD = [sys.executable, str(WORKER)]


def read_until(process: subprocess.Popen, marker: str, timeout: float = 180) -> str:
    """Read the child's output until a line ends with ``marker`` (tqdm shares the pipe)."""
    deadline, seen = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if re.search(rf"(^|\W){re.escape(marker)}$", line.rstrip()):
            return "".join(seen)
    process.kill()
    raise AssertionError(f"no {marker!r} from the worker:\n{''.join(seen)[-4000:]}")


def test_sigkill_mid_epoch_then_restart_ends_with_the_uninterrupted_weights(tmp_path: Path):
    """Conditional GAN, 4 epochs of 4 steps, a checkpoint per epoch; killed during epoch 2."""
    checkpoints = tmp_path / "ckpt"
    victim = start(
        [*WORKER_CMD, "train", str(tmp_path / "run"), "--checkpoints", str(checkpoints)]
        + ["--slow", "0.3"]
    )
    read_until(victim, "step 5")  # steps are 0-based: step 5 is the 2nd of epoch 2
    saved = sorted(p.name for p in checkpoints.glob("*/ckpt-*.safetensors"))
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    assert saved == ["ckpt-000000004.safetensors"], "killed after epoch 1's checkpoint only"
    assert not (tmp_path / "run" / "weights.safetensors").exists()

    output = finish(
        start([*WORKER_CMD, "train", str(tmp_path / "run"), "--checkpoints", str(checkpoints)])
    )
    assert "ckpt-000000004.safetensors (step 4)" in output  # resumed, did not start over
    threads = torch.get_num_threads()  # the uninterrupted run, here, with the worker's 1 thread
    torch.set_num_threads(1)
    try:
        train(tmp_path / "ref", tmp_path / "ref_ckpt", slow=0.0)
    finally:
        torch.set_num_threads(threads)
    resumed = load_file(str(tmp_path / "run" / "weights.safetensors"))
    expected = load_file(str(tmp_path / "ref" / "weights.safetensors"))
    assert resumed.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(resumed[key], value), key
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert history == json.loads((tmp_path / "ref" / "history.json").read_text())


def runs(project: Path) -> list[tuple[str, str, str]]:
    """(run id, name, status) of every MLflow run, oldest first, straight from the store."""
    with sqlite3.connect(project / "mlflow.db") as db:
        return db.execute("select run_uuid, name, status from runs order by start_time").fetchall()


def test_one_training_per_variant_and_a_sigkilled_run_is_closed_by_the_next(
    records_project: Path,  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
):
    """`kedro run` processes: a second training of the running variant is refused in one line
    (exit 2, no MLflow run); the first, SIGKILLed, stays RUNNING until the next start of the
    variant marks it KILLED, names it, and resumes from its checkpoint."""
    project = records_project  # test_run_records' tiny project, model input ready
    long = f"baseline.training.checkpoint_dir={CHECKPOINTS},baseline.training.sample_every=0"
    first = kedro_run(project, f"{long},baseline.training.iterations=100000", tmp_path / "1.log")
    wait_for_checkpoint_after(project, first, 0)
    before = runs(project)

    second = kedro_run(project, f"{long},baseline.training.iterations=100000", tmp_path / "2.log")
    assert second.wait(timeout=120) == 2
    output = (tmp_path / "2.log").read_text()
    assert "Traceback" not in output
    assert output.strip().splitlines()[-1] == (
        f"Error: another training of variant 'default' is running in {CHECKPOINTS} (it holds "
        f"{CHECKPOINTS}/.default.lock): wait for it to end, or train another variant "
        "(--params run_name=<name>) (full traceback: logs/kedro_run_error.log)"
    )
    assert first.poll() is None, "the first training runs on"
    assert runs(project) == before, "the refused run recorded nothing"

    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    newest = checkpoint_steps(project)[-1]  # what the killed run left
    ((killed, _, status),) = [run for run in runs(project) if run[1] == RUN]
    assert status == "RUNNING"  # nothing ran at its death

    third = kedro_run(
        project, f"{long},baseline.training.iterations={newest + 2}", tmp_path / "3.log"
    )
    assert third.wait(timeout=120) == 0, (tmp_path / "3.log").read_text()[-3000:]
    output = (tmp_path / "3.log").read_text()
    assert re.search(rf"MLflow run {killed} \({re.escape(RUN)}\) was left RUNNING by process "
                     rf"{first.pid}, which is gone: marked KILLED; run (\w+) takes over", output)  # fmt: skip
    assert re.search(rf"Resumed from \S+ckpt-0*{newest}\.safetensors", output)
    (_, _, was), (resumed, _, now) = [run[:3] for run in runs(project) if run[1] == RUN]
    assert (was, now) == ("KILLED", "FINISHED")
    with sqlite3.connect(project / "mlflow.db") as db:
        tag = "select value from tags where run_uuid = ? and key = 'fashiongan.takes_over'"
        assert db.execute(tag, (resumed,)).fetchall() == [(killed,)]


@pytest.fixture
def tiny_fs(tmp_path: Path):
    """A 1 MiB tmpfs at ``tmp_path/fs`` (root with CAP_SYS_ADMIN), unmounted afterwards."""
    mount_point = tmp_path / "fs"
    mount_point.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if result.returncode:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {result.stderr.strip()}")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(folder: Path, leave: int) -> None:
    """Fill the filesystem of ``folder`` up to ``leave`` bytes free."""
    stats = os.statvfs(folder)
    free = stats.f_bavail * stats.f_frsize
    (folder / "filler").write_bytes(b"\0" * max(0, free - leave))


def test_disk_full_during_a_checkpoint_keeps_the_previous_one(tiny_fs: Path):
    params = overridden(BASELINE, iterations=4, checkpoint_dir=str(tiny_fs / "ckpt"))
    train_mlp_gan(torch.zeros(16, 1, 28, 28), params)
    (folder,) = (tiny_fs / "ckpt").iterdir()
    previous = folder / "ckpt-000000004.safetensors"
    before = previous.read_bytes()
    fill(tiny_fs, leave=4096)
    with pytest.raises(OSError, match=r"could not write .*ckpt-000000008.safetensors") as err:
        train_mlp_gan(torch.zeros(16, 1, 28, 28), overridden(params, iterations=8))
    assert err.value.errno == errno.ENOSPC
    assert previous.read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == [previous.name], "no temp file left"
    config = MLPGANConfig(**BASELINE.model.model_dump())
    state = TrainingState({"G": MLPGenerator(config)}, {}, torch.Generator())
    load_checkpoint(previous, state, folder.name)  # still a complete checkpoint
    assert state.step == 4


def test_read_only_output_keeps_the_previous_artifact(tiny_fs: Path):
    model_path = tiny_fs / "models" / "generator.safetensors"
    tensors_path = tiny_fs / "data" / "x.safetensors"
    first = MLPGenerator(mlp_config(noise_dim=4, generator_hidden=(8,)))
    TorchModelDataset(filepath=str(model_path)).save(first)
    TensorDictDataset(filepath=str(tensors_path)).save({"a": torch.zeros(3)})
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_fs)], check=True)

    second = MLPGenerator(mlp_config(noise_dim=4, generator_hidden=(8,)))
    with pytest.raises(DatasetError, match=r"could not write .*generator.safetensors: Read-only"):
        TorchModelDataset(filepath=str(model_path)).save(second)
    with pytest.raises(DatasetError, match=r"could not write .*x.safetensors: Read-only"):
        TensorDictDataset(filepath=str(tensors_path)).save({"a": torch.ones(3)})
    loaded = TorchModelDataset(filepath=str(model_path)).load()
    for a, b in zip(loaded.state_dict().values(), first.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert torch.equal(TensorDictDataset(filepath=str(tensors_path)).load()["a"], torch.zeros(3))


def test_disk_full_during_a_dataset_save_keeps_the_previous_artifact(tiny_fs: Path):
    path = tiny_fs / "x.safetensors"
    TensorDictDataset(filepath=str(path)).save({"a": torch.zeros(3)})
    fill(tiny_fs, leave=8192)
    with pytest.raises(DatasetError, match=r"(?s)x.safetensors.*No space left on device"):
        TensorDictDataset(filepath=str(path)).save({"a": torch.zeros(100_000)})  # 400 kB
    assert torch.equal(TensorDictDataset(filepath=str(path)).load()["a"], torch.zeros(3))
    assert sorted(p.name for p in tiny_fs.iterdir()) == ["filler", "x.safetensors"]
