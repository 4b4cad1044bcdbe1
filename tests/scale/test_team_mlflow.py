"""conf/team: the tiny baseline pipeline logs to a real `mlflow server` on a real PostgreSQL.

Starts a throw-away PostgreSQL cluster (initdb + pg_ctl on a free 127.0.0.1 port, as the
``postgres`` user when run as root) and ``mlflow server --backend-store-uri postgresql://...
--artifacts-destination <tmp>``, runs ``train_gan --namespaces=baseline`` with ``--env=team``
through a KedroSession, then reads the run, a metric history and an artifact back with
MlflowClient and checks that they are rows in PostgreSQL and files in the artifact root.
Skipped, saying why, only without PostgreSQL's server binaries (Debian: ``apt-get install
postgresql``); where initdb exists, a missing pg_ctl, ``postgres`` user or psycopg2 is a failure.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from fashiongan.datasets import TensorDictDataset
from tests.conftest import REPO_ROOT
from tests.scale.conftest import child_env, free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]


def postgres_bin() -> Path:
    """The folder with initdb and pg_ctl (they are not on PATH in Debian's package).

    Skipped only where PostgreSQL is absent (no initdb anywhere). Where there is an initdb the
    test must run: anything else it lacks is a failure that says what to install.
    """
    found = shutil.which("initdb") or shutil.which("pg_ctl")
    candidates = [Path(found).parent] if found else []
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    initdb = [str(folder / "initdb") for folder in candidates if (folder / "initdb").exists()]
    if initdb:
        pytest.fail(f"{initdb[0]} is here but pg_ctl is not beside it: apt-get install postgresql")
    pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql")


def as_db_user(command: list[str]) -> list[str]:
    """initdb refuses to run as root: run PostgreSQL as ``postgres`` then."""
    if os.geteuid() != 0:
        return command
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail(
            "running as root and there is no `postgres` user to run PostgreSQL as: "
            "apt-get install postgresql creates it (or run the tests as a normal user)"
        )
    return ["runuser", "-u", "postgres", "--", *command]


def import_psycopg2():
    """psycopg2 is a dev dependency: missing, it is a failure once PostgreSQL is here."""
    try:
        import psycopg2
    except ImportError as err:
        pytest.fail(f"psycopg2 missing ({err}): `make install` or pip install psycopg2-binary")
    return psycopg2


def wait_for(check, what: str, process: subprocess.Popen | None = None, timeout: float = 180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(
                f"{what} exited with {process.returncode}:\n{process.stdout.read()}"
            )
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{what} did not come up in {timeout} s")


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A fresh PostgreSQL cluster on 127.0.0.1 with an empty ``mlflow`` database: user@host/db."""
    binaries = postgres_bin()  # first: skipped where there is no PostgreSQL at all
    psycopg2 = import_psycopg2()
    home = Path(tempfile.mkdtemp(prefix="fashiongan-pg-"))  # not under pytest's 0700 root dir
    if os.geteuid() == 0:
        shutil.chown(home, "postgres", "postgres")
    data, port = home / "data", free_port()
    subprocess.run(
        as_db_user(
            [str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"]
            + ["-E", "UTF8", "--no-sync"]
        ),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -c fsync=off"
    pg_ctl = [str(binaries / "pg_ctl"), "-D", str(data), "-l", str(home / "log")]
    subprocess.run(as_db_user([*pg_ctl, "-o", options, "-w", "start"]), check=True)
    try:
        connection = psycopg2.connect(
            host="127.0.0.1", port=port, user="postgres", dbname="postgres"
        )
        connection.autocommit = True
        connection.cursor().execute("CREATE DATABASE mlflow")
        connection.close()
        yield f"postgres@127.0.0.1:{port}/mlflow"
    finally:
        subprocess.run(as_db_user([*pg_ctl, "-m", "immediate", "stop"]), check=False)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def mlflow_server(postgres: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """``mlflow server`` on a free 127.0.0.1 port, PostgreSQL backend, local artifact root."""
    artifacts = tmp_path_factory.mktemp("artifacts")
    port = free_port()
    server = subprocess.Popen(
        # SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3: name the psycopg2 driver.
        [sys.executable, "-m", "mlflow", "server"]
        + ["--backend-store-uri", f"postgresql+psycopg2://{postgres}"]
        + ["--artifacts-destination", str(artifacts), "--host", "127.0.0.1", "--port", str(port)]
        + ["--workers", "1"],
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    uri = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        with urllib.request.urlopen(f"{uri}/health", timeout=5) as response:
            return response.status == 200

    try:
        wait_for(healthy, "mlflow server", server)
        yield {"uri": uri, "artifacts": artifacts, "postgres": postgres}
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


def team_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tiny project with its overrides in conf/team (conf/local is not read with --env=team)."""
    from tests.conftest import make_kedro_project

    project = make_kedro_project(tmp_path, monkeypatch)
    assert (project / "conf/team/mlflow.yml").read_text() == (
        REPO_ROOT / "conf/team/mlflow.yml"
    ).read_text()
    for name in ("parameters.yml", "catalog.yml"):
        shutil.copy(project / "conf/local" / name, project / "conf/team" / name)
    g = torch.Generator().manual_seed(0)
    images = torch.rand(64, 1, 28, 28, generator=g) * 2 - 1
    labels = torch.arange(64) % 10
    TensorDictDataset(filepath="data/05_model_input/fashion_mnist.safetensors").save(
        {  # every split the catalog's contract names; only the training one is used
            f"{split}_{kind}": tensor.clone()  # safetensors refuses shared memory
            for split in ("train", "validation", "test")
            for kind, tensor in (("images", images), ("labels", labels))
        }
    )
    return project


def test_team_env_logs_to_the_postgres_backed_server(mlflow_server, tmp_path, monkeypatch):
    import mlflow
    import psycopg2
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    project = team_project(tmp_path, monkeypatch)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server["uri"])
    previous_uri = mlflow.get_tracking_uri()
    try:
        bootstrap_project(project)
        with KedroSession.create(project_path=project, env="team") as session:
            session.run(pipeline_names=["train_gan"], namespaces=["baseline"])
    finally:
        mlflow.set_tracking_uri(previous_uri)  # later tests must not talk to a stopped server

    client = mlflow.MlflowClient(tracking_uri=mlflow_server["uri"])
    experiment = client.get_experiment_by_name("fashiongan")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "train_gan.baseline@team"
    assert run.data.params["baseline.training.iterations"] == "20"
    history = client.get_metric_history(run.info.run_id, "baseline/d_loss")
    assert [m.step for m in history] == [5, 10, 15, 20]

    figures = [a.path for a in client.list_artifacts(run.info.run_id, "figures/baseline")]
    assert "figures/baseline/baseline_samples.png" in figures
    local = client.download_artifacts(
        run.info.run_id, "figures/baseline/baseline_samples.png", str(tmp_path)
    )
    assert Path(local).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    stored = list(mlflow_server["artifacts"].rglob("baseline_samples.png"))
    assert len(stored) == 1, "the server wrote the artifact under its --artifacts-destination"

    with (
        psycopg2.connect(f"postgresql://{mlflow_server['postgres']}") as connection,
        connection.cursor() as cursor,
    ):
        cursor.execute("SELECT count(*) FROM metrics WHERE run_uuid = %s", (run.info.run_id,))
        assert cursor.fetchone()[0] > 4  # the metric rows live in PostgreSQL
