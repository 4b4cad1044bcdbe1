"""The two MLflow runs ``make train`` makes, as the ``kedro`` command line records them today.

``make train`` runs ``kedro run --pipelines=train_gan --namespaces=baseline``, then
``--namespaces=conditional``: two runs in the ``fashiongan`` experiment. Their names and tags
are what a user filters on in the MLflow UI, so they are pinned here exactly; renaming them
(as issue #14 plans) must change this file too. Both commands run as child processes on the
tiny project, so the tags are the command line's (the runner, the script) and not a session's.
"""

from __future__ import annotations

import copy
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
NAMESPACES = ("baseline", "conditional")
#: Every tag of such a run besides MLflow's own ``mlflow.*`` (``project_path`` and ``run_id``
#: vary; checked for shape below).
TAGS_TODAY = {
    "kedro_command": "kedro run --pipeline=train_gan",  # the namespace is not in it
    "kedro_version": "1.7.0",
    "pipeline_names": "['train_gan']",
    "runner": "<kedro.runner.sequential_runner.SequentialRunner object at 0x…>",
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, mlflow.entities.Run]:
    """Namespace → its MLflow run, after ``make data`` and both ``make train`` commands."""
    monkeypatch = pytest.MonkeyPatch()
    project = make_kedro_project(tmp_path_factory.mktemp("mlflow_runs"), monkeypatch)
    quicker = copy.deepcopy(TINY_PARAMETERS)  # names and tags do not depend on these
    quicker["conditional"]["text_encoder"]["trainable_top_layers"] = 0
    quicker["conditional"]["training"].update(epochs=1, aux_weight=0.0, attribute_mismatch=0.0)
    (project / "conf/local/parameters.yml").write_text(yaml.safe_dump(quicker))
    run_pipeline(project, ["data_processing", "captions"])
    for namespace in NAMESPACES:
        result = subprocess.run(
            [str(KEDRO), "run", "--pipelines=train_gan", f"--namespaces={namespace}"],
            cwd=project,
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("fashiongan")
    found = client.search_runs(
        [experiment.experiment_id], filter_string="tags.pipeline_names = \"['train_gan']\""
    )
    monkeypatch.undo()
    by_namespace = {}
    for run in found:
        namespace = run.data.tags.get("namespaces", "")
        assert namespace not in by_namespace, f"two runs for {namespace}"
        by_namespace[namespace] = run
    return {name: by_namespace.get(f"['{name}']") for name in NAMESPACES}


def kedro_tags(run: mlflow.entities.Run) -> dict[str, str]:
    """The run's tags without MLflow's own and the per-run ones; the runner's address masked."""
    tags = {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")}
    assert tags.pop("run_id"), "kedro's session id"
    assert Path(tags.pop("project_path")).name == "project"
    if "runner" in tags:
        tags["runner"] = tags["runner"].split(" at 0x")[0] + " at 0x…>"
    return tags


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_each_training_command_makes_one_finished_run_named_after_the_pipeline(runs, namespace):
    run = runs[namespace]
    assert run is not None, f"no MLflow run tagged namespaces=['{namespace}']"
    assert run.info.run_name == "train_gan"
    assert run.data.tags["mlflow.runName"] == "train_gan"
    assert run.info.status == "FINISHED"
    assert run.data.tags["mlflow.source.name"] == str(KEDRO)


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_the_kedro_tags_are_todays(runs, namespace):
    assert kedro_tags(runs[namespace]) == {**TAGS_TODAY, "namespaces": f"['{namespace}']"}


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_a_run_holds_only_its_own_namespace(runs, namespace):
    """Parameters and metrics carry their model's prefix: the two runs do not mix."""
    run = runs[namespace]
    assert run.data.metrics and all(m.startswith(f"{namespace}/") for m in run.data.metrics)
    assert any(p.startswith(f"{namespace}.training.") for p in run.data.params)
    other = next(n for n in NAMESPACES if n != namespace)
    assert not [p for p in run.data.params if p.startswith(f"{other}.")]
