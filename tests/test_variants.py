"""Variants side by side: ``run_name`` sends a run's models, histories and reports to their own
folders, so a variant never overwrites the default (or another variant)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest
import yaml
from kedro.config import OmegaConfigLoader

from fashiongan.config import ConfigError, parse_block
from fashiongan.settings import CONFIG_LOADER_ARGS, project_root
from tests.conftest import REPO_ROOT, logging_restored, make_kedro_project


def _config(env: str, run_name: str | None = None) -> OmegaConfigLoader:
    runtime = {"run_name": run_name} if run_name else None
    return OmegaConfigLoader(
        str(REPO_ROOT / "conf"), env=env, runtime_params=runtime, **CONFIG_LOADER_ARGS
    )


@pytest.mark.parametrize("name", ["Tuned", "my run", "-x", "", "a/b", "../up"])
def test_run_name_must_be_a_slug(name):
    with pytest.raises(ConfigError) as err:
        parse_block("run_name", name)
    assert str(err.value).startswith("run_name: string should")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("env", ["base", "smoke"])
def test_the_parameter_and_the_catalog_name_the_same_variant(env):
    """parameters.yml's run_name (tags, hooks) and globals.yml's (catalog paths) agree."""
    folder = REPO_ROOT / "conf" / env
    parameters = yaml.safe_load((folder / "parameters.yml").read_text())
    globals_ = yaml.safe_load((folder / "globals.yml").read_text())
    assert parameters["run_name"] == globals_["run_name"] == {"base": "default"}.get(env, env)


@pytest.mark.parametrize(
    ("run_name", "model_dir", "reports"),
    [(None, "default", "reports"), ("tuned", "tuned", "reports/variants/tuned")],
)
def test_every_trained_model_path_names_the_variant(run_name, model_dir, reports):
    catalog = _config("local", run_name)["catalog"]
    model_paths = {
        name: entry["filepath"]
        for name, entry in catalog.items()
        if str(entry.get("filepath", "")).startswith("models/")
    }
    assert len(model_paths) >= 15  # train_gan, autoencoders, classifier, evaluator, fashioniq
    for name, path in model_paths.items():
        family, variant = Path(path).parts[1:3]
        assert variant == model_dir, (name, path)
    for name, entry in catalog.items():
        saved = entry["dataset"] if isinstance(entry.get("dataset"), dict) else entry
        path = str(saved.get("filepath", saved.get("path", "")))
        if path.startswith("reports"):
            assert path.startswith(reports + "/"), (name, path)
        if path.startswith("data/08_reporting/") and "fashion_mnist" not in path:
            assert f"/{model_dir}/" in path or path.endswith("ingestion.json"), (name, path)


def test_the_runtime_name_overrides_the_environments():
    catalog = _config("smoke", "tuned")["catalog"]
    assert catalog["evaluator_model"]["filepath"] == "models/evaluator/tuned/evaluator.safetensors"
    assert _config("smoke")["parameters"]["run_name"] == "smoke"
    assert _config("smoke", "tuned")["parameters"]["run_name"] == "tuned"


def test_project_root_is_the_real_one_inside_a_dvc_experiment(tmp_path, monkeypatch):
    root = tmp_path / "project"
    (root / "conf").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[tool.kedro]\n")
    monkeypatch.chdir(root / "conf")
    assert project_root() == root.as_posix()  # from a sub-folder
    copy = root / ".dvc" / "tmp" / "exps" / "tmpab12cd"  # dvc exp run --temp / --queue
    copy.mkdir(parents=True)
    (copy / "pyproject.toml").write_text("[tool.kedro]\n")
    monkeypatch.chdir(copy)
    assert project_root() == root.as_posix()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run(project: Path, runtime_params: dict, **run_args) -> None:
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    with logging_restored():
        bootstrap_project(project)
        with KedroSession.create(project_path=project, runtime_params=runtime_params) as session:
            session.run(**run_args)


@pytest.mark.slow
def test_a_variant_writes_beside_the_default_never_over_it(tmp_path, monkeypatch):
    """Tiny project: the default baseline, then run_name=tuned with another seed."""
    monkeypatch.setenv("FASHIONGAN_REGISTER_MODELS", "0")  # no pyfunc logging: seconds, not tens
    project = make_kedro_project(tmp_path, monkeypatch)
    _run(project, {}, pipeline_names=["data_processing"])
    _run(project, {}, pipeline_names=["train_gan"], namespaces=["baseline"])
    default = project / "models/baseline/default/generator.safetensors"
    before = _digest(default)

    tuned_params = {"run_name": "tuned", "baseline": {"training": {"seed": 7}}}
    _run(project, tuned_params, pipeline_names=["train_gan"], namespaces=["baseline"])
    tuned = project / "models/baseline/tuned/generator.safetensors"
    assert _digest(default) == before  # untouched by the variant
    assert _digest(tuned) != before  # another seed: another model, in its own folder
    for variant in ("default", "tuned"):
        assert (project / f"data/08_reporting/baseline/{variant}/training_history.csv").is_file()
    assert (project / "reports/figures/baseline").is_dir()
    assert (project / "reports/variants/tuned/figures/baseline").is_dir()


def _baseline_steps(project: Path, run_name: str, iterations: int, log_every: int) -> list[int]:
    """Train the tiny baseline as variant ``run_name``; the steps of its history's rows."""
    training = {"iterations": iterations, "log_every": log_every, "checkpoint_every": log_every}
    runtime = {"run_name": run_name, "baseline": {"training": training}}
    _run(project, runtime, pipeline_names=["train_gan"], namespaces=["baseline"])
    history = pd.read_csv(project / f"data/08_reporting/baseline/{run_name}/training_history.csv")
    return history["step"].tolist()


@pytest.mark.slow
def test_a_variant_resumes_only_its_own_checkpoints(tmp_path, monkeypatch):
    """`make smoke` then `make train` (issue #30): smoke's checkpoint has the default's
    fingerprint (only run-control keys differ), yet the default starts afresh; a run of the
    same variant stopped half-way resumes. A resumed run keeps the rows it logged before, every
    ``log_every`` steps of its own, so the history tells which checkpoint it started from."""
    monkeypatch.setenv("FASHIONGAN_REGISTER_MODELS", "0")
    project = make_kedro_project(tmp_path, monkeypatch)
    _run(project, {}, pipeline_names=["data_processing"])
    assert _baseline_steps(project, "smoke", iterations=10, log_every=2) == [2, 4, 6, 8, 10]
    assert _baseline_steps(project, "default", iterations=20, log_every=5) == [5, 10, 15, 20]

    assert _baseline_steps(project, "tuned", iterations=10, log_every=2) == [2, 4, 6, 8, 10]
    resumed = _baseline_steps(project, "tuned", iterations=20, log_every=5)
    assert resumed == [2, 4, 6, 8, 10, 15, 20]  # from its own step-10 checkpoint
    checkpoints = project / "data/06_models/checkpoints/baseline"
    folders = {path.parent.parent.name for path in checkpoints.rglob("ckpt-*.safetensors")}
    assert folders == {"smoke", "default", "tuned"}  # <checkpoint_dir>/<run_name>/<fingerprint>/
