"""Every failure a user can cause is one line, a non-zero exit and no traceback; good files stay.

``kedro run`` cases run the real command on a tiny project (one project for the module; each
case plants its fault and removes it): in this process, and in a child interpreter as a user types
it for one case of each way out (a failing node, a refused environment, a broken setup). ``fashiongan`` cases use click's runner, or a
subprocess where a fresh process matters (matplotlib warns about a missing glyph once per process).
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner

from fashiongan.cli import cli
from fashiongan.datasets.safetensors import save_module
from fashiongan.models.conditional_gan import ConditionalGenerator
from fashiongan.models.mlp_gan import MLPDiscriminator, MLPGenerator
from tests.conftest import kedro_run_failure, kedro_run_failure_in_process, make_kedro_project
from tests.model_configs import TINY_CONDITIONAL, conditional_config, mlp_config

LOG_NOTE = "(full traceback: logs/kedro_run_error.log)"
RAW = "data/01_raw/fashion-mnist/train-labels-idx1-ubyte.gz"
MODEL_INPUT = "data/05_model_input/fashion_mnist.safetensors"


def last_line(output: str) -> str:
    return output.strip().splitlines()[-1]


def digests(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder``: 'good files intact' is these being equal."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# --- kedro run ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def project(tmp_path_factory):
    monkeypatch = pytest.MonkeyPatch()
    yield make_kedro_project(tmp_path_factory.mktemp("user_errors"), monkeypatch)
    monkeypatch.undo()


def _truncate(project: Path) -> None:
    raw = project / RAW
    raw.write_bytes(raw.read_bytes()[:100])


def _empty(project: Path) -> None:
    (project / RAW).write_bytes(b"")


def _text_as_model_input(project: Path) -> None:
    (project / MODEL_INPUT).parent.mkdir(parents=True, exist_ok=True)
    (project / MODEL_INPUT).write_text("these are not tensors\n")


KEDRO_CASES = {
    "truncated raw file": (
        _truncate,
        ["--pipelines=data_processing"],
        "Error: " + RAW + " is truncated or not gzip (Compressed file ended",
    ),
    "empty raw file": (
        _empty,
        ["--pipelines=data_processing"],
        "Error: " + RAW + " is empty; expected a gzip file whose decompressed SHA-256 is",
    ),
    "unreadable safetensors input": (
        _text_as_model_input,
        ["--pipelines=train_gan", "--namespaces=baseline"],
        "Error: " + MODEL_INPUT + " is not a readable safetensors file",
    ),
    "unknown namespace": (
        None,
        ["--pipelines=train_gan", "--namespaces=nope"],
        "Error: no namespace 'nope' in pipeline train_gan (have: baseline, conditional)",
    ),
    "unknown pipeline": (
        None,
        ["--pipelines=nope"],
        "Error: no pipeline 'nope' (have: __default__, autoencoders, captions,",
    ),
}
#: The cases run as a real ``kedro run`` process; the others run in this one (seconds faster).
IN_A_CHILD_PROCESS = {"truncated raw file", "MLflow store locked by another writer"}


def _kedro_run_failure(case: str):
    return kedro_run_failure if case in IN_A_CHILD_PROCESS else kedro_run_failure_in_process


@pytest.mark.slow
@pytest.mark.parametrize("case", list(KEDRO_CASES))
def test_kedro_run_failure_is_one_line_with_the_traceback_in_a_file(project, case):
    plant, args, expected = KEDRO_CASES[case]
    raw_before = (project / RAW).read_bytes()
    if plant is not None:
        plant(project)
    log = project / "logs" / "kedro_run_error.log"
    log.unlink(missing_ok=True)
    try:
        line = _kedro_run_failure(case)(project, *args)
    finally:
        (project / RAW).write_bytes(raw_before)
        (project / MODEL_INPUT).unlink(missing_ok=True)
    line = line.replace(f"{project}/", "")  # datasets may name paths either way
    assert line.startswith(expected), line
    assert line.endswith(LOG_NOTE)
    assert "Traceback (most recent call last)" in log.read_text()  # the frames are kept
    assert not list(project.glob("data/06_models/**/ckpt-*"))  # nothing downstream was written
    assert not (project / "models").exists()


@pytest.mark.slow
def test_kedro_run_unknown_environment_names_the_ones_there_are(project):
    assert kedro_run_failure(project, "--env", "nope") == (
        "Error: no configuration environment 'nope' in conf/ (have: base, local, smoke, team): pass "
        "one of them to --env, or create conf/nope/"
    )
    assert not (project / "data" / "02_intermediate").exists()  # refused before any work


def _broken_yaml(project: Path) -> contextlib.AbstractContextManager:
    return _planted(project / "conf/local/parameters_broken.yml", b"baseline:\n  training: [oops\n")


def _mlflow_conf(project: Path, uri: str) -> contextlib.AbstractContextManager:
    conf = project / "conf/local/mlflow.yml"
    settings = yaml.safe_load(conf.read_text())
    settings["server"]["mlflow_tracking_uri"] = uri
    return _planted(conf, yaml.safe_dump(settings).encode())


def _corrupt_store(project: Path) -> contextlib.AbstractContextManager:
    return _planted(project / "mlflow.db", b"this is no SQLite file\n" * 200)


@contextlib.contextmanager
def _planted(path: Path, content: bytes):
    """``path`` holds ``content`` for the block, then what it held before (or nothing)."""
    before = path.read_bytes() if path.exists() else None
    path.write_bytes(content)
    try:
        yield
    finally:
        path.unlink()
        if before is not None:
            path.write_bytes(before)


@contextlib.contextmanager
def _locked_store(project: Path):
    """Another writer holds the store's write lock (a second run, the MLflow UI)."""
    holder = sqlite3.connect(project / "mlflow.db", isolation_level=None)
    holder.execute("begin exclusive")
    try:
        yield
    finally:
        holder.close()


@contextlib.contextmanager
def _checkpoint_dir_under_a_file(project: Path):
    with _planted(project / "afile", b"not a folder\n"):
        yield


BASELINE = ["--pipelines=train_gan", "--namespaces=baseline", "--params"]
CKPT = "baseline.training.checkpoint_dir"
SETUP_CASES = {
    "YAML syntax error in a parameters file": (
        _broken_yaml,
        ["--pipelines=train_gan", "--namespaces=baseline"],
        "Error: Invalid YAML or JSON file conf/local/parameters_broken.yml, unable to read line 2, "
        "position 0 (expected ',' or ']', but got '<stream end>'): fix the YAML syntax there and "
        "run again",
    ),
    "checkpoint_dir under a file": (
        _checkpoint_dir_under_a_file,
        [*BASELINE, f"{CKPT}=afile/ck"],
        f"Error: {CKPT} afile/ck cannot be used: afile is a file, not a folder; set {CKPT} to a "
        "folder you can write",
    ),
    "checkpoint_dir in a folder that takes no new folders": (
        None,
        [*BASELINE, f"{CKPT}=/proc/fashiongan-ckpt"],
        f"Error: {CKPT} /proc/fashiongan-ckpt cannot be used: no folder can be created in /proc (",
    ),
    "MLflow store locked by another writer": (
        _locked_store,
        [*BASELINE, "baseline.training.iterations=1"],
        "Error: the MLflow store mlflow.db is locked by another writer (another run, or the "
        "MLflow UI): wait for it to finish, then run again",
    ),
    "corrupt MLflow store": (
        _corrupt_store,
        [*BASELINE, "baseline.training.iterations=1"],
        "Error: the MLflow store mlflow.db is corrupt (file is not a database): restore a copy, ",
    ),
    "unreachable MLflow server": (
        lambda project: _mlflow_conf(project, "http://127.0.0.1:9"),
        [*BASELINE, "baseline.training.iterations=1"],
        "Error: the MLflow server http://127.0.0.1:9 cannot be reached: start it, or point "
        "server.mlflow_tracking_uri in conf/<env>/mlflow.yml at one that runs",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(SETUP_CASES))
def test_a_broken_setup_is_exit_2_and_one_line_that_says_what_to_do(project, case, monkeypatch):
    """Each fault planted in a project whose store already holds a run: refused before any
    node runs (no model input exists), the store and its runs untouched."""
    import mlflow

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # MLflow retries for 4 minutes
    # In-process runs of earlier tests leave MLflow's global URI on their own store; a fresh
    # `kedro run` process starts on this project's.
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    plant, args, expected = SETUP_CASES[case]
    if not (project / "mlflow.db").exists():
        kedro_run_failure_in_process(project, *BASELINE, "baseline.training.iterations=1")  # 2
    store = (project / "mlflow.db").read_bytes()
    log = project / "logs" / "kedro_run_error.log"
    log.unlink(missing_ok=True)
    with plant(project) if plant else contextlib.nullcontext():
        line = _kedro_run_failure(case)(project, *args).replace(f"{project}/", "")
    assert line.startswith(expected), line
    assert line.endswith(LOG_NOTE)
    assert "Traceback (most recent call last)" in log.read_text()
    assert (project / "mlflow.db").read_bytes() == store  # no run recorded, nothing broken
    assert not (project / "models").exists()


# --- fashiongan generate ---------------------------------------------------------------------------
#: A checkpoint where training writes one: <checkpoint_dir>/<run_name>/<fingerprint>/.
CHECKPOINT_FILE = (
    "data/06_models/checkpoints/baseline/default/4a59f25c0d5e3180/ckpt-000000010.safetensors"
)


@pytest.fixture
def models(tmp_path: Path) -> Path:
    """A project-like folder: models/baseline/default/{generator,discriminator}, a checkpoint,
    junk."""
    torch.manual_seed(0)
    config = mlp_config(generator_hidden=(8, 8, 8), discriminator_hidden=(8,))
    baseline = tmp_path / "models" / "baseline" / "default"
    save_module(MLPGenerator(config), baseline / "generator.safetensors")
    save_module(MLPDiscriminator(config), baseline / "discriminator.safetensors")
    (tmp_path / CHECKPOINT_FILE).parent.mkdir(parents=True)
    from safetensors.torch import save_file

    save_file(
        {"module.generator.w": torch.zeros(2)},
        str(tmp_path / CHECKPOINT_FILE),
        metadata={"state": '{"step": 10}'},
    )
    (tmp_path / "notes.safetensors").write_text("a text file, not a model\n")
    whole = (baseline / "generator.safetensors").read_bytes()
    (tmp_path / "truncated.safetensors").write_bytes(whole[: len(whole) // 2])
    return tmp_path


GENERATE_CASES = {
    "text file": (
        ["--model", "notes.safetensors"],
        "Error: notes.safetensors is not a readable safetensors model (Error while deserializing "
        "header: header too large): train it again (make train) or give --model a "
        "generator.safetensors from models/<name>/",
    ),
    "truncated model": (
        ["--model", "truncated.safetensors"],
        "Error: truncated.safetensors is not a readable safetensors model (Error while "
        "deserializing header: incomplete metadata, file not fully covered): train it again "
        "(make train) or give --model a generator.safetensors from models/<name>/",
    ),
    "training checkpoint": (
        ["--model", CHECKPOINT_FILE],
        f"Error: {CHECKPOINT_FILE} is a training checkpoint: use the generator in models/baseline/",
    ),
    "discriminator": (
        ["--model", "models/baseline/default/discriminator.safetensors"],
        "Error: models/baseline/default/discriminator.safetensors is a discriminator, not a generator: "
        "use models/baseline/default/generator.safetensors",
    ),
    "PNG grid too large": (
        ["--n", "100000"],
        "Error: --n 100000 is too many for a PNG grid (at most 256): write them to an .npz "
        "instead (--out out.npz)",
    ),
    "request over the memory bound": (
        ["--n", "1000000", "--out", "out.npz"],
        "Error: n=1000000 images would take 2.9 GiB (n × 1 × 28 × 28 × 4 bytes), over the 2 GiB "
        "bound: ask for at most 684784 at a time",
    ),
}


@pytest.mark.parametrize("case", list(GENERATE_CASES))
def test_generate_refuses_what_it_cannot_use_in_one_line(models, monkeypatch, case):
    args, expected = GENERATE_CASES[case]
    monkeypatch.chdir(models)
    before = digests(models)
    out = [] if "--out" in args else ["--out", "out.png"]
    started = time.monotonic()
    result = CliRunner().invoke(cli, ["generate", *args, *out])
    assert time.monotonic() - started < 30  # refused up front, not after drawing
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # handled: no traceback
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert last_line(result.output) == expected
    assert digests(models) == before  # models untouched, no output written


def test_help_states_the_grid_cap_and_the_memory_bound():
    from fashiongan.generation import MAX_GRID_IMAGES, MAX_REQUEST_BYTES

    text = " ".join(CliRunner().invoke(cli, ["generate", "--help"]).output.split())
    assert f"at most {MAX_GRID_IMAGES} in a PNG grid" in text
    assert f"{MAX_REQUEST_BYTES // 1024**3} GiB of pixels" in text


def _conditional_with_encoder(folder: Path, weights: bytes | None = None) -> Path:
    """A tiny conditional generator and a copy of the bundled BERT saved beside it (its weights
    replaced by ``weights`` when given)."""
    from fashiongan.text.loading import SETTINGS_FILE, bundled_model_path

    config = conditional_config(**TINY_CONDITIONAL, text_encoder="./text_encoder")
    generator = folder / "models" / "conditional" / "generator.safetensors"
    save_module(ConditionalGenerator(config), generator)
    encoder = generator.parent / "text_encoder"
    bundled = bundled_model_path()
    shutil.copytree(bundled, encoder, ignore=shutil.ignore_patterns("model.safetensors"))
    if weights is None:
        shutil.copyfile(bundled / "model.safetensors", encoder / "model.safetensors")
    else:
        (encoder / "model.safetensors").write_bytes(weights)
    (encoder / SETTINGS_FILE).write_text('{"pooling": "mean", "normalize": true, "max_length": 64}')
    return generator


def test_truncated_text_encoder_weights_are_named(tmp_path, monkeypatch):
    from fashiongan.text.loading import bundled_model_path

    with (bundled_model_path() / "model.safetensors").open("rb") as whole:
        generator = _conditional_with_encoder(tmp_path, weights=whole.read(5000))
    weights = generator.parent / "text_encoder" / "model.safetensors"
    monkeypatch.chdir(tmp_path)
    before = digests(tmp_path / "models")
    result = CliRunner().invoke(
        cli, ["generate", "--model", str(generator), "--text", "a bag", "--out", "bags.png"]
    )
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert len(result.output.strip().splitlines()) == 1
    assert last_line(result.output).startswith(f"Error: {weights} is unreadable (")
    assert "copy it again or retrain (make train)" in result.output
    assert digests(tmp_path / "models") == before and not (tmp_path / "bags.png").exists()


@pytest.mark.slow
def test_emoji_caption_draws_without_glyph_warnings(tmp_path):
    """A fresh process: matplotlib warns about a missing glyph once per process and font."""
    generator = _conditional_with_encoder(tmp_path)
    out = tmp_path / "coat.png"
    done = subprocess.run(
        [sys.executable, "-m", "fashiongan", "generate", "--model", str(generator)]
        + ["--text", "a dark coat 🧥", "--n", "4", "--out", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Glyph" not in output and "missing from font" not in output
    assert output.strip().splitlines() == [f"wrote 4 images to {out}"]
    assert out.stat().st_size > 0


def test_drawable_drops_only_what_no_font_has():
    from fashiongan.plotting import drawable

    assert drawable("conditional: a dark coat 🧥") == "conditional: a dark coat"
    assert drawable("a light café dress") == "a light café dress"


# --- fashiongan search and the app --------------------------------------------------------------
@pytest.fixture
def conf_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_kedro_project(tmp_path, monkeypatch)


@pytest.mark.parametrize(
    "args,expected",
    [
        (
            ["--conf-source", "/missing"],
            "Error: no configuration folder /missing/: run from the project root, or pass "
            "--conf-source the project's conf/ folder",
        ),
        (
            ["--env", "nope"],
            "Error: no configuration environment 'nope' in conf/ (have: base, local, smoke, team): "
            "pass one of them to --env, or create conf/nope/",
        ),
    ],
)
def test_search_with_a_bad_conf_source_or_env_is_one_line(conf_project, args, expected):
    result = CliRunner().invoke(cli, ["search", "--text", "a dark ankle boot", *args])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert result.output.strip().splitlines() == [expected]


def test_app_without_an_index_or_with_a_bad_port_is_one_line(conf_project):
    from fashiongan.search import app

    before = digests(conf_project)
    no_models = CliRunner().invoke(app.main, [])
    assert no_models.exit_code == 2, no_models.output
    assert isinstance(no_models.exception, SystemExit)
    assert last_line(no_models.output).startswith("Error: no generator found among [")
    assert last_line(no_models.output).endswith("train one first (make train)")
    bad_port = CliRunner().invoke(app.main, ["--port", "70000"])
    assert bad_port.exit_code == 2
    assert bad_port.output.strip().splitlines() == [
        "Error: --port must be between 1 and 65535, got 70000"
    ]
    assert "Traceback" not in no_models.output + bad_port.output
    assert digests(conf_project) == before


@pytest.mark.slow
def test_app_on_a_taken_port_is_one_line(conf_project, monkeypatch):
    from fashiongan.search import app
    from tests.search.conftest import write_index_files

    write_index_files(conf_project)
    real_launch = app.launch
    monkeypatch.setattr(  # should it start after all, return instead of serving forever
        app, "launch", lambda demo, host, port, mb: real_launch(demo, host, port, mb, block=False)
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app.main, ["--port", str(port)])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert last_line(result.output) == (
        f"Error: cannot listen on 127.0.0.1:{port} (Cannot find empty port in range: "
        f"{port}-{port}): pass another --port or --host"
    )


# --- the raw data fallback ------------------------------------------------------------------------
def test_no_apt_names_the_missing_files_and_where_to_put_them(tmp_path, monkeypatch):
    from kedro.io import DatasetError

    from fashiongan.datasets import fashion_mnist

    monkeypatch.setattr(fashion_mnist.shutil, "which", lambda name: None)
    folder = tmp_path / "fashion-mnist"
    with pytest.raises(DatasetError) as caught:
        fashion_mnist.fetch_debian(folder, ["t10k-labels-idx1-ubyte"])
    assert str(caught.value) == (
        f"{folder} lacks t10k-labels-idx1-ubyte.gz: the official mirror could not be reached and "
        "the Debian fallback needs apt-get and dpkg-deb, which this system lacks; download them "
        f"from {fashion_mnist.OFFICIAL_BASE_URL} and put them in {folder}/"
    )


def test_one_line_prefers_the_innermost_message_that_names_a_file():
    from fashiongan.errors import one_line

    try:
        try:
            try:
                raise EOFError("Compressed file ended before the end-of-stream marker")
            except EOFError as err:
                raise ValueError("data/x.gz is truncated: delete it and run make data") from err
        except ValueError as err:
            raise RuntimeError("raw:\nFailed while loading data/x.gz") from err
    except RuntimeError as err:
        assert one_line(err) == "ValueError: data/x.gz is truncated: delete it and run make data"
    assert one_line(KeyError("train_images")) == "KeyError: 'train_images'"
