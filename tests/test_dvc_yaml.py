"""The real ``dvc.yaml``, loaded by DVC itself: its graph, its commands and its dependencies.

``dvc repro`` is the README's way to rebuild everything; a stage that runs a pipeline Kedro no
longer has, a dependency path that moved, or a lost edge (training before its captions) would
only show on a full rebuild. DVC reads a copy of the file in a temporary DVC repository, so the
project's own ``.dvc`` folder is left alone.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT

DVC = Path(sys.executable).parent / "dvc"
#: Who feeds whom, as ``dvc dag`` draws it. A change here is a change of the build order.
EXPECTED_EDGES = {
    ("data", "train_baseline"),
    ("data", "captions"),
    ("data", "train_conditional"),
    ("data", "autoencoders"),
    ("data", "classifier"),
    ("data", "search_index"),
    ("data", "train_evaluator"),
    ("data", "evaluate"),
    ("captions", "train_conditional"),
    ("captions", "search_index"),
    ("captions", "evaluate"),
    ("train_conditional", "search_index"),
    ("train_conditional", "evaluate"),
    ("train_baseline", "evaluate"),
    ("autoencoders", "evaluate"),
    ("train_evaluator", "evaluate"),
}
#: Inputs a user brings, not a stage: FashionIQ's raw files (its stage is frozen for that).
USER_PROVIDED = {"data/01_raw/fashioniq"}
#: Registered pipelines no stage runs on its own: the default, and one the ``fashioniq`` joins.
NOT_STAGES = {"__default__", "fashioniq_processing"}


@pytest.fixture(scope="module")
def dvc_copy(tmp_path_factory) -> Path:
    """A bare DVC repository holding a copy of the project's ``dvc.yaml``."""
    folder = tmp_path_factory.mktemp("dvc")
    shutil.copy(REPO_ROOT / "dvc.yaml", folder / "dvc.yaml")
    from dvc.repo import Repo

    Repo.init(str(folder), no_scm=True)
    return folder


@pytest.fixture(scope="module")
def stages(dvc_copy: Path) -> dict:
    """Stage name → DVC's stage object, as ``dvc repro`` loads them."""
    from dvc.repo import Repo

    with Repo(str(dvc_copy)) as repo:
        return {stage.name: stage for stage in repo.index.stages}


@pytest.fixture(scope="module")
def pipelines() -> dict:
    """The project's registered Kedro pipelines (what ``kedro run --pipelines`` accepts)."""
    from kedro.framework.startup import bootstrap_project

    from tests.conftest import logging_restored

    with logging_restored():
        bootstrap_project(REPO_ROOT)
    from fashiongan.pipeline_registry import register_pipelines

    return register_pipelines()


def test_dvc_dag_draws_the_expected_build_order(dvc_copy: Path):
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    result = subprocess.run(
        [str(DVC), "dag", "--dot"], cwd=dvc_copy, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    edges = set(re.findall(r'^"(\w+)" -> "(\w+)";$', result.stdout, flags=re.MULTILINE))
    assert edges == EXPECTED_EDGES


def kedro_run_arguments(cmd: str) -> dict[str, str]:
    """``{"pipelines": …, "namespaces": …}`` of a ``kedro run --key=value …`` command."""
    words = shlex.split(cmd)
    assert words[:2] == ["kedro", "run"], f"not a kedro run: {cmd!r}"
    options = dict(word.removeprefix("--").split("=", 1) for word in words[2:])
    assert set(options) <= {"pipelines", "namespaces"}, f"unexpected options in {cmd!r}"
    return options


def test_every_stage_runs_a_registered_pipeline_and_namespace(stages, pipelines):
    run = set()
    for name, stage in stages.items():
        options = kedro_run_arguments(stage.cmd)
        pipeline = options["pipelines"]
        assert pipeline in pipelines, f"stage {name}: no Kedro pipeline {pipeline!r}"
        run.add(pipeline)
        if "namespaces" in options:
            namespace = options["namespaces"]
            nodes = pipelines[pipeline].only_nodes_with_namespaces([namespace]).nodes
            assert nodes, f"stage {name}: {pipeline} has no namespace {namespace!r}"
    assert set(pipelines) - run == NOT_STAGES, "a pipeline without a DVC stage (or one removed)"


def test_train_gan_runs_once_per_namespace(stages):
    commands = {stage.cmd for stage in stages.values()}
    assert "kedro run --pipelines=train_gan --namespaces=baseline" in commands
    assert "kedro run --pipelines=train_gan --namespaces=conditional" in commands
    assert "kedro run --pipelines=train_gan" not in commands  # both in one run: one MLflow run


def test_every_dependency_is_in_the_repository_or_made_by_a_stage(stages):
    outputs = {out.def_path for stage in stages.values() for out in stage.outs}
    for name, stage in stages.items():
        for dep in stage.deps:
            path = dep.def_path
            if path.startswith(("data/", "models/")):
                assert path in outputs | USER_PROVIDED, f"stage {name}: nothing makes {path}"
            else:
                assert (REPO_ROOT / path).exists(), f"stage {name}: {path} does not exist"


def test_every_parameter_key_exists_in_its_file(stages):
    from dvc.dependency import ParamsDependency

    checked = 0
    for name, stage in stages.items():
        for dep in stage.deps:
            if not isinstance(dep, ParamsDependency):
                continue
            values = yaml.safe_load((REPO_ROOT / dep.def_path).read_text())
            for key in dep.params:
                block = values
                for part in key.split("."):
                    assert isinstance(block, dict) and part in block, (
                        f"stage {name}: {dep.def_path} has no {key}"
                    )
                    block = block[part]
                checked += 1
    assert checked >= len(stages)  # every stage names at least one parameter block


def _top_level_plots() -> dict[str, dict]:
    plots = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["plots"]
    return {path: spec for plot in plots for path, spec in plot.items()}


def test_every_training_history_is_plotted_against_its_step(stages):
    histories = {
        out.def_path
        for stage in stages.values()
        for out in stage.outs
        if out.def_path.endswith("history.csv")
    }
    plots = _top_level_plots()
    assert len(histories) >= 10 and histories <= set(plots)
    for path in histories:
        assert plots[path]["x"] == "step" and plots[path]["y"], path


def test_the_evaluation_metrics_are_plotted_per_model(stages):
    """Its metrics file holds a ``table`` list (model, fid_evaluator, …) that DVC plots read."""
    (path,) = (out.def_path for out in stages["evaluate"].outs if out.metric)
    assert _top_level_plots()[path] == {
        "template": "bar_horizontal",
        "x": "fid_evaluator",
        "y": "model",
    }


def test_metrics_are_cached_so_experiments_show_them(stages):
    """data/ is git-ignored: an experiment's metrics reach `dvc exp show` through the cache."""
    metrics = [out for stage in stages.values() for out in stage.outs if out.metric]
    assert len(metrics) >= 9
    assert all(out.use_cache for out in metrics), [o.def_path for o in metrics if not o.use_cache]


def test_every_stage_depends_on_the_catalog_and_the_dataset_code(stages):
    for name, stage in stages.items():
        paths = {dep.def_path for dep in stage.deps}
        assert "conf/base/catalog.yml" in paths, name
        assert {"src/fashiongan/datasets", "src/fashiongan/datasets/"} & paths, name
        own = REPO_ROOT / "conf/base" / f"catalog_{name.removeprefix('train_')}.yml"
        if own.exists():
            assert own.relative_to(REPO_ROOT).as_posix() in paths, name


def test_the_tracking_uri_is_the_project_roots():
    """Absolute, found from the working directory: a DVC experiment's temporary copy logs to it."""
    mlflow = yaml.safe_load((REPO_ROOT / "conf/base/mlflow.yml").read_text())
    assert mlflow["server"]["mlflow_tracking_uri"] == "sqlite:///${project_root:}/mlflow.db"


@pytest.mark.slow
def test_a_reproduced_stage_is_up_to_date_afterwards(tmp_path, monkeypatch):
    """`dvc repro data` on the tiny project, then `dvc status` has nothing to say (what `make
    data` leaves behind)."""
    from tests.conftest import make_kedro_project

    project = make_kedro_project(tmp_path, monkeypatch)
    (project / "src" / "fashiongan").symlink_to(REPO_ROOT / "src" / "fashiongan")
    shutil.copy(REPO_ROOT / "dvc.yaml", project / "dvc.yaml")
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PATH": f"{DVC.parent}:{os.environ['PATH']}"}

    def dvc(*args: str) -> str:
        result = subprocess.run(
            [str(DVC), *args], cwd=project, env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout

    dvc("init", "--no-scm", "-q")
    assert "Running stage 'data'" in dvc("repro", "data")
    assert "up to date" in dvc("status", "data")
    assert "didn't change" in dvc("repro", "data")
