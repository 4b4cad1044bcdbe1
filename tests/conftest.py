"""Shared fixtures: tiny Fashion-MNIST-format data and a throw-away copy of the Kedro project.

Nothing here touches the network or the real data: the idx files are drawn by the tests.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import logging
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

# Under CI=true a skip fails unless its component cannot be had here (tests/ci_skips.py).
pytest_plugins = ["tests.ci_skips"]

REPO_ROOT = Path(__file__).resolve().parents[1]
IDX_NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (``-n 2`` in pyproject's addopts) each worker computes on one thread
    unless OMP_NUM_THREADS says otherwise: two workers of two threads each would contend for
    the two cores. The workers start after this and inherit it."""
    if config.getoption("numprocesses", default=None):
        os.environ.setdefault("OMP_NUM_THREADS", "1")


def idx_bytes(array: np.ndarray) -> bytes:
    """Serialise a uint8 array in the idx format (magic 0x08, ndim, big-endian dims)."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def draw_items(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """Draw a simple 28×28 item per label: a filled box whose width, height and tone vary by class.

    Enough structure for a classifier or a GAN to learn something in a few steps.
    """
    rng = np.random.default_rng(seed)
    images = np.zeros((len(labels), 28, 28), dtype=np.uint8)
    for i, label in enumerate(labels):
        half_width = 3 + int(label) % 5 + int(rng.integers(0, 2))
        top = 4 + int(label) // 5 * 6
        tone = 120 + int(label) * 12 + int(rng.integers(-10, 10))
        images[i, top:26, 14 - half_width : 14 + half_width] = tone
        if label % 2:
            images[i, top:26:3, 14 - half_width : 14 + half_width] //= 2  # stripes: a pattern
    return images


def write_tiny_fashion_mnist(
    folder: Path, n_train: int = 200, n_test: int = 50, seed: int = 0
) -> dict[str, str]:
    """Write the four gzipped idx files; return their decompressed SHA-256s."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    train_labels = np.arange(n_train) % 10
    rng.shuffle(train_labels)
    test_labels = np.arange(n_test) % 10
    arrays = {
        "train-images-idx3-ubyte": draw_items(train_labels, seed),
        "train-labels-idx1-ubyte": train_labels.astype(np.uint8),
        "t10k-images-idx3-ubyte": draw_items(test_labels, seed + 1),
        "t10k-labels-idx1-ubyte": test_labels.astype(np.uint8),
    }
    checksums = {}
    for name, array in arrays.items():
        raw = idx_bytes(array)
        (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
        checksums[name] = hashlib.sha256(raw).hexdigest()
    return checksums


@contextlib.contextmanager
def logging_restored():
    """Kedro sessions install rich handlers that print to stdout; keep them from leaking into
    what runs next (a CLI test would find log lines in the JSON it reads from stdout)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


@pytest.fixture(autouse=True)
def _restore_logging():
    with logging_restored():
        yield


@pytest.fixture(autouse=True, scope="module")
def _restore_logging_after_module():
    """The same for module-scoped fixtures, which run before the per-test restore."""
    with logging_restored():
        yield


@pytest.fixture
def tiny_raw(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A folder of tiny idx files and their checksums."""
    folder = tmp_path / "raw"
    return folder, write_tiny_fashion_mnist(folder)


@pytest.fixture
def kedro_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of this project's conf/ in a temp dir, on tiny data, with its own sqlite MLflow store.

    ``conf/local`` points the raw dataset at the tiny files (no fetching) and shrinks training.
    The working directory is the temp project, so relative catalog paths land there.
    """
    return make_kedro_project(tmp_path, monkeypatch)


def make_kedro_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """What the ``kedro_project`` fixture does, callable from module-scoped fixtures."""
    project = tmp_path / "project"
    shutil.copytree(REPO_ROOT / "conf", project / "conf", ignore=shutil.ignore_patterns("local"))
    shutil.copy(REPO_ROOT / "pyproject.toml", project / "pyproject.toml")
    (project / ".telemetry").write_text("consent: false\n")
    (project / "src").mkdir()  # kedro wants source_dir; the package itself is installed
    checksums = write_tiny_fashion_mnist(project / "data" / "01_raw" / "fashion-mnist")
    local = project / "conf" / "local"
    local.mkdir(parents=True)
    catalog = {
        "fashion_mnist_raw": {
            "type": "fashiongan.datasets.FashionMNISTRawDataset",
            "path": "data/01_raw/fashion-mnist",
            "fetch": False,
            "checksums": checksums,
        }
    }
    (local / "catalog.yml").write_text(yaml.safe_dump(catalog))
    (local / "parameters.yml").write_text(yaml.safe_dump(TINY_PARAMETERS))
    # An absolute store: MLflow caches one SQL engine per URI string, so two tests sharing
    # the relative "sqlite:///mlflow.db" would write into the first test's file.
    mlflow_conf = yaml.safe_load((REPO_ROOT / "conf/base/mlflow.yml").read_text())
    mlflow_conf["server"]["mlflow_tracking_uri"] = f"sqlite:///{project / 'mlflow.db'}"
    (local / "mlflow.yml").write_text(yaml.safe_dump(mlflow_conf))
    # Logging and registering each trained model costs 1-4 s a run; the tests of the registry
    # and of run records switch it back on.
    monkeypatch.setenv("FASHIONGAN_REGISTER_MODELS", "0")
    monkeypatch.chdir(project)
    return project


#: Overrides that make every pipeline run in seconds on the tiny data (conf/local/parameters.yml).
TINY_PARAMETERS: dict = {
    "baseline": {
        "training": {
            "iterations": 20,
            "batch_size": 16,
            "log_every": 5,
            "sample_every": 10,
            "checkpoint_every": 10,
            "model": {
                "noise_dim": 100,
                "generator_hidden": [32, 64, 128],
                "discriminator_hidden": [64, 32],
                "dropout": 0.3,
                "leaky_slope": 0.2,
                "image_size": 28,
                "channels": 1,
            },
        },
        "figures": {"n_samples": 8, "ncols": 4},
    },
    "conditional": {
        "sample_captions": ["a dark ankle boot", "light trousers"],
        # BERT's last layer and a text head tuned with the GAN: evaluation and search then
        # load both from the folder saved beside the generator.
        "text_encoder": {
            "device": "cpu",
            "trainable_top_layers": 1,
            "head": "attention",
            "head_pools": 2,
        },
        "training": {
            "epochs": 2,
            "batch_size": 32,
            "log_every": 2,
            "sample_columns": 3,
            "aux_weight": 0.5,  # the AC-GAN term on: the caption grammar feeds it
            "model": {
                "g_channels": 8,
                "d_channels": 8,
                "text_channels": 4,
                "noise_channels": 4,
                "embed_dim": 16,
            },
            "embedding": {"width": 4, "dim": 8},
        },
        "figures": {"ncols": 3},
    },
}


def kedro_run_failure(project: Path, *args: str, exit_code: int = 2) -> str:
    """``kedro run *args`` in ``project`` as a user types it; assert it failed with ``exit_code``
    and printed no traceback; return its last line (the one a user reads)."""
    done = subprocess.run(
        [sys.executable, "-m", "kedro", "run", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=180,
    )
    output = done.stdout + done.stderr
    assert done.returncode == exit_code, output[-3000:]
    assert "Traceback" not in output
    return output.strip().splitlines()[-1]


def kedro_run_failure_in_process(project: Path, *args: str, exit_code: int = 2) -> str:
    """What :func:`kedro_run_failure` checks, with ``kedro run`` invoked in this process (click's
    runner, Kedro's logging captured with the command's output): seconds faster than a child
    interpreter. Each exit path keeps one case run as a real process."""
    from click.testing import CliRunner
    from kedro.framework.startup import bootstrap_project

    from fashiongan.cli import cli

    with logging_restored(), contextlib.chdir(project):
        metadata = bootstrap_project(project)
        done = CliRunner().invoke(cli, ["run", *args], obj=metadata)
    assert done.exit_code == exit_code, done.output[-3000:]
    assert isinstance(done.exception, SystemExit), done.exception  # handled: no traceback
    assert "Traceback" not in done.output
    return done.output.strip().splitlines()[-1]


def run_pipeline(project: Path, names: list[str], runtime_params: dict | None = None) -> dict:
    """Run registered pipelines through a real KedroSession on ``project``."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    with logging_restored():  # module-scoped fixtures run sessions outside _restore_logging
        bootstrap_project(project)  # configures Kedro's logging
        with KedroSession.create(
            project_path=project, runtime_params=runtime_params or {}
        ) as session:
            return session.run(pipeline_names=names)
