"""The real ``dvc.yaml``, loaded by DVC itself: its graph, its commands and its dependencies.

``dvc repro`` is the README's way to rebuild everything; a stage that runs a pipeline Kedro no
longer has, a dependency path that moved, or a lost edge (training before its captions) would
only show on a full rebuild. DVC reads a copy of the file in a temporary DVC repository, so the
project's own ``.dvc`` folder is left alone.
"""

from __future__ import annotations

import importlib.util
import json
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
        assert "src/fashiongan/datasets/__init__.py" in paths, name
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


def _load_dvc_deps():
    spec = importlib.util.spec_from_file_location("dvc_deps", REPO_ROOT / "tools" / "dvc_deps.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


dvc_deps = _load_dvc_deps()


def test_every_stage_lists_exactly_the_code_its_run_imports():
    """dvc.yaml's src/ deps are derived (tools/dvc_deps.py): `make dvc-deps` after an import
    changes, or a new module appears, rewrites them."""
    assert dvc_deps.differences(REPO_ROOT) == []


def _project_beside(tmp_path: Path, dvc_yaml: str) -> Path:
    """A root with the project's code and configuration and its own ``dvc.yaml``."""
    for folder in ("src", "conf"):
        (tmp_path / folder).symlink_to(REPO_ROOT / folder)
    (tmp_path / "dvc.yaml").write_text(dvc_yaml)
    return tmp_path


def test_a_dependency_deleted_from_dvc_yaml_is_reported_and_restored(tmp_path):
    text = (REPO_ROOT / "dvc.yaml").read_text()
    line = "      - src/fashiongan/pixels.py\n"
    start = text.index("  train_conditional:\n")
    at = text.index(line, start)
    root = _project_beside(tmp_path, text[:at] + text[at + len(line) :])
    assert dvc_deps.differences(root) == ["train_conditional: missing src/fashiongan/pixels.py"]
    rewritten = dvc_deps.rewrite((root / "dvc.yaml").read_text(), dvc_deps.derived_deps(root))
    assert rewritten == text


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


#: A planted project: one thing of each kind the walk must follow, or must not.
PLANTED = {
    "src/fashiongan/__init__.py": "# planted\n",
    "src/fashiongan/cli.py": (
        "import click\n"
        "from fashiongan import errors\n"
        "@click.group()\n"
        "def cli():\n"
        "    pass\n"
        "@cli.command()\n"
        "def draw():\n"
        "    from fashiongan import drawing\n"
        "    _save()\n"
        "def _save():\n"
        "    from fashiongan import saving\n"
        "def _register():\n"
        "    from fashiongan import extra_commands\n"
        "_register()\n"
    ),
    "src/fashiongan/errors.py": "# planted\n",
    "src/fashiongan/drawing.py": "# planted\n",
    "src/fashiongan/saving.py": "# planted\n",
    "src/fashiongan/extra_commands.py": "# planted\n",
    "src/fashiongan/settings.py": "from fashiongan.hooks import Hook\n",
    "src/fashiongan/hooks.py": "class Hook:\n    def after(self):\n        import fashiongan.publish\n",
    "src/fashiongan/publish.py": "# planted\n",
    "src/fashiongan/pipeline_registry.py": (
        "def create_joined_pipeline():\n"
        "    return _create('other') + _create('shown')\n"
        "def register_pipelines():\n"
        "    import fashiongan.registry_helper\n"
    ),
    "src/fashiongan/registry_helper.py": "# planted\n",
    "src/fashiongan/pipelines/__init__.py": "# planted\n",
    "src/fashiongan/pipelines/shown/__init__.py": "from .pipeline import create_pipeline\n",
    "src/fashiongan/pipelines/shown/pipeline.py": (
        "from typing import TYPE_CHECKING\n"
        "from . import nodes\n"
        "if TYPE_CHECKING:\n"
        "    from fashiongan import typing_only\n"
    ),
    "src/fashiongan/pipelines/shown/nodes.py": (
        "LAZY = 'fashiongan.lib.lazy'\n"
        "PREFIX = 'fashiongan.unused.'\n"
        "def node():\n"
        "    from fashiongan.lib import core\n"
    ),
    "src/fashiongan/pipelines/other/__init__.py": "# planted\n",
    "src/fashiongan/pipelines/joined/__init__.py": "# planted\n",
    "src/fashiongan/typing_only.py": "# planted\n",
    "src/fashiongan/unused/__init__.py": "# planted\n",
    "src/fashiongan/lib/__init__.py": "",
    "src/fashiongan/lib/core.py": "# planted\n",
    "src/fashiongan/lib/lazy.py": "# planted\n",
    "src/fashiongan/lib/templates/report.md.j2": "# planted\n",
    "src/fashiongan/data/__init__.py": "# planted\n",
    "src/fashiongan/data/files.py": "# planted\n",
    "conf/base/catalog.yml": "x:\n  type: fashiongan.data.files.FileDataset\n",
}


def test_the_walk_follows_what_a_run_imports_and_nothing_else(tmp_path):
    _write(tmp_path, PLANTED)
    found = {p.removeprefix("src/fashiongan/") for p in dvc_deps.code_deps(tmp_path, "shown")}
    assert found == {
        "__init__.py",
        "cli.py",  # Kedro merges the project CLI: its import-time code runs ...
        "errors.py",
        "extra_commands.py",  # ... with what it calls at import,
        "settings.py",
        "hooks.py",
        "publish.py",  # a hook's function-level import,
        "pipeline_registry.py",
        "registry_helper.py",
        "pipelines/__init__.py",
        "pipelines/shown/__init__.py",
        "pipelines/shown/pipeline.py",  # relative imports,
        "pipelines/shown/nodes.py",
        "lib/core.py",  # a node's function-level import,
        "lib/lazy.py",  # a module named by a string,
        "lib/templates/report.md.j2",  # the files a package reads,
        "data/__init__.py",
        "data/files.py",  # the catalog's dataset types.
    }  # Not: a command's body or its helpers, TYPE_CHECKING, a prefix, another's composition,
    # an empty file (lib/__init__.py).
    joined = dvc_deps.code_deps(tmp_path, "joined")
    assert "src/fashiongan/pipelines/other/__init__.py" in joined


def test_a_stage_command_that_is_not_a_kedro_run_is_refused():
    with pytest.raises(dvc_deps.StageError, match="not `kedro run --pipelines=X`"):
        dvc_deps.pipeline_of("python train.py")
    assert dvc_deps.pipeline_of("kedro run --pipelines=train_gan --namespaces=baseline") == (
        "train_gan"
    )


#: Run in a fresh interpreter: every pipeline's `kedro run` imports, as Kedro 1.7 loads them.
IMPORTED_BY_RUN = """
import json, sys
from pathlib import Path
from kedro.framework.startup import bootstrap_project

found = {}
for name in sys.argv[2:]:
    for module in [m for m in sys.modules if m.split(".")[0] == "fashiongan"]:
        del sys.modules[module]
    bootstrap_project(Path(sys.argv[1]))
    import fashiongan.cli  # Kedro's CLI merges the project's commands
    from kedro.framework.project import pipelines

    pipelines.configure("fashiongan.pipeline_registry")
    pipelines.set_requested([name])
    pipelines[name]
    found[name] = sorted(m for m in sys.modules if m.split(".")[0] == "fashiongan")
print(json.dumps(found))
"""


@pytest.mark.slow
def test_what_kedro_imports_for_each_stage_is_among_its_deps(stages):
    """The static walk against the interpreter: each module a stage's run has imported by the
    time its pipeline is built is one of the stage's deps."""
    by_stage = {name: dvc_deps.pipeline_of(stage.cmd) for name, stage in stages.items()}
    result = subprocess.run(
        [sys.executable, "-c", IMPORTED_BY_RUN, str(REPO_ROOT), *sorted(set(by_stage.values()))],
        capture_output=True,
        text=True,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    imported = json.loads(result.stdout.splitlines()[-1])
    for name, stage in stages.items():
        deps = {dep.def_path for dep in stage.deps}
        src = REPO_ROOT / "src"
        files = {dvc_deps.module_file(src, m) for m in imported[by_stage[name]]}
        coded = {p.relative_to(REPO_ROOT).as_posix() for p in files if p.stat().st_size}
        missing = coded - deps
        assert not missing, f"stage {name}: {sorted(missing)}"
        assert len(imported[by_stage[name]]) > 15, name


def _figure_folders() -> set[str]:
    """The folders under reports/figures/ that the catalog's figure datasets write."""
    folders = set()
    for path in (REPO_ROOT / "conf/base").glob("catalog*.yml"):
        for entry in yaml.safe_load(path.read_text()).values():
            inner = entry.get("dataset", entry) if isinstance(entry, dict) else {}
            filepath = str(inner.get("filepath", "")) if isinstance(inner, dict) else ""
            if filepath.startswith("${_reports}/figures/"):
                folders.add(filepath.replace("${_reports}", "reports"))
    return {f.replace("{namespace}", ns) for f in folders for ns in ("baseline", "conditional")}


def test_every_report_a_run_writes_is_an_out_tracked_once(stages):
    """Right after `make train`, git lists only dvc.lock as changed. Every figure folder and
    markdown report a stage writes is one of its outs, tracked once: by DVC's cache (git-ignored,
    the docs show copies in docs/figures/), or, for the committed reports and the figures they
    link, by git (`cache: false`), so the user commits them with dvc.lock."""
    outs = {out.def_path: out for stage in stages.values() for out in stage.outs}
    reports = {
        "reports/model_comparison.md",
        "reports/autoencoders.md",
        "reports/classifier_comparison.md",
    }
    written = _figure_folders() | reports
    assert {"reports/figures/baseline", "reports/figures/conditional"} <= written
    assert written <= set(outs), sorted(written - set(outs))
    in_git = {path for path in written if not outs[path].use_cache}
    assert reports <= in_git
    for path in sorted(written):
        listed = subprocess.run(
            ["git", "ls-files", path], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        )
        probe = f"{path}/x.png" if not path.endswith(".md") else path
        ignored = subprocess.run(["git", "check-ignore", "-q", probe], cwd=REPO_ROOT)
        if path in in_git:
            assert listed.stdout and ignored.returncode == 1, f"{path}: committed, not ignored"
        else:
            assert not listed.stdout and ignored.returncode == 0, f"{path}: ignored, no git file"
