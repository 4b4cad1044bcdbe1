"""The MLflow runs ``make train`` makes: named and tagged for what they did, models registered.

On the tiny project (a git checkout of its conf), ``make data`` then two training commands as a
user types them: the baseline as DVC's ``train_baseline`` stage would launch it, and a
``tuned`` variant of the conditional GAN. Both run as child processes, so the tags are the
command line's, not a test session's.
"""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import yaml

from tests.conftest import TINY_PARAMETERS, make_kedro_project, run_pipeline
from tests.scale.conftest import child_env

pytestmark = pytest.mark.slow
KEDRO = Path(sys.executable).parent / "kedro"
COMMANDS = {
    "train_gan.baseline": ["run", "--pipelines=train_gan", "--namespaces=baseline"],
    "train_gan.conditional.tuned": [
        "run", "--pipelines=train_gan", "--namespaces=conditional", "--params=run_name=tuned",
    ],
}  # fmt: skip


def _git(project: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=project, check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    monkeypatch = pytest.MonkeyPatch()
    project = make_kedro_project(tmp_path_factory.mktemp("mlflow_runs"), monkeypatch)
    quicker = copy.deepcopy(TINY_PARAMETERS)  # names and tags do not depend on these
    quicker["conditional"]["text_encoder"]["trainable_top_layers"] = 0
    quicker["conditional"]["training"].update(epochs=1, aux_weight=0.0)
    (project / "conf/local/parameters.yml").write_text(yaml.safe_dump(quicker))
    _git(project, "init", "-q")
    _git(project, "add", "conf", "pyproject.toml")
    _git(project, "commit", "-q", "-m", "the tiny project's configuration")
    run_pipeline(project, ["data_processing", "captions"])
    for name, args in COMMANDS.items():
        dvc = {"DVC_STAGE": "train_baseline"} if name == "train_gan.baseline" else {}
        dvc["FASHIONGAN_REGISTER_MODELS"] = "1"  # whatever the suite's default
        result = subprocess.run(
            [str(KEDRO), *args], cwd=project, env=child_env(**dvc),
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    monkeypatch.undo()
    return project


@pytest.fixture(scope="module")
def client(project) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")


@pytest.fixture(scope="module")
def runs(client) -> dict[str, mlflow.entities.Run]:
    experiment = client.get_experiment_by_name("fashiongan")
    found = client.search_runs([experiment.experiment_id])
    names = [run.info.run_name for run in found]
    assert sorted(names) == sorted(COMMANDS), "one run a command, named for it, none for ingestion"
    return {run.info.run_name: run for run in found}


def test_the_experiment_opens_on_the_runs_table(client):
    experiment = client.get_experiment_by_name("fashiongan")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


@pytest.mark.parametrize("name", COMMANDS)
def test_a_run_records_its_command_code_and_data(runs, project, name):
    run = runs[name]
    tags = run.data.tags
    assert run.info.status == "FINISHED"
    assert tags["fashiongan.command"] == "kedro " + " ".join(COMMANDS[name])
    assert tags["fashiongan.pipeline"] == "train_gan"
    assert tags["fashiongan.namespace"] == name.split(".")[1]
    assert tags["fashiongan.run_name"] == ("tuned" if name.endswith("tuned") else "default")
    assert tags["fashiongan.kedro_env"] == "local"
    assert tags["fashiongan.git.commit"] == _git(project, "rev-parse", "HEAD")
    assert tags["fashiongan.git.dirty"] == "false"
    digest, path = tags["fashiongan.sha256.fashion_mnist_model_input"].split("  ")
    assert path == "data/05_model_input/fashion_mnist.safetensors"
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert tags["runner"] == "SequentialRunner"
    assert not [f"{k}={v}" for k, v in tags.items() if re.search(r"object at 0x|^\[|^\{", v)]


def test_the_dvc_stage_that_launched_a_run_is_named(runs):
    assert runs["train_gan.baseline"].data.tags["fashiongan.dvc.stage"] == "train_baseline"
    assert "fashiongan.dvc.stage" not in runs["train_gan.conditional.tuned"].data.tags


def test_the_conditional_run_reads_its_captions_and_the_baseline_does_not(runs):
    conditional = runs["train_gan.conditional.tuned"].data.tags
    assert "fashiongan.sha256.fashion_mnist_captions" in conditional
    assert "fashiongan.sha256.fashion_mnist_captions" not in runs["train_gan.baseline"].data.tags


@pytest.mark.parametrize("name", COMMANDS)
def test_a_run_holds_only_its_own_namespace(runs, name):
    """Parameters and metrics carry their model's prefix: the two runs do not mix."""
    namespace = name.split(".")[1]
    run = runs[name]
    assert run.data.metrics and all(m.startswith(f"{namespace}/") for m in run.data.metrics)
    assert any(p.startswith(f"{namespace}.training.") for p in run.data.params)
    other = next(n.split(".")[1] for n in COMMANDS if n != name)
    assert not [p for p in run.data.params if p.startswith(f"{other}.")]


@pytest.mark.parametrize(("name", "family"), [("train_gan.baseline", "baseline"),
                                              ("train_gan.conditional.tuned", "conditional")])  # fmt: skip
def test_each_trained_model_is_registered_from_its_run(client, runs, name, family):
    (version,) = client.search_model_versions(f"name='fashiongan-{family}'")
    assert version.run_id == runs[name].info.run_id
    variant = "tuned" if family == "conditional" else "default"
    assert version.tags["fashiongan.model_dir"] == f"models/{family}/{variant}"
    assert version.tags["fashiongan.kedro_env"] == "local"
