"""``kedro run --pipelines=data_processing,evaluation`` on the tiny project, MLflow included."""

import json
import re
import subprocess

import mlflow
import pytest
from tests.conftest import run_pipeline

MODELS = ("baseline", "conditional", "vae")


def _git(project, *args) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=project, check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip


@pytest.fixture(scope="module")
def evaluated(evaluation_project):
    """The evaluation run inside a git checkout (the project copy is none: make it one), so the
    run records a real commit."""
    _git(evaluation_project, "init", "-q")
    _git(evaluation_project, "add", "conf", "pyproject.toml")
    _git(evaluation_project, "commit", "-q", "-m", "the tiny project's configuration")
    run_pipeline(evaluation_project, ["data_processing", "evaluation"])
    return evaluation_project


def test_metrics_json_has_a_row_a_model_and_the_references(evaluated):
    metrics = json.loads((evaluated / "data/08_reporting/evaluation/metrics.json").read_text())
    assert set(metrics["rows"]) == {*MODELS, "floor", "noise"}
    assert metrics["settings"]["evaluator"]["n_samples"] == 50
    assert metrics["settings"]["inception"] == {
        "enabled": False,
        "note": "inception.enabled is false",
    }
    rows = metrics["rows"]
    for name in (*MODELS, "floor", "noise"):
        assert rows[name]["fid_evaluator"] >= 0 and 0 <= rows[name]["coverage"] <= 1
    assert "d_accuracy" in rows["baseline"] and "d_accuracy" in rows["conditional"]
    assert "d_accuracy" not in rows["vae"]  # no discriminator
    assert (
        "conditional_accuracy" in rows["conditional"]
        and "conditional_accuracy" not in rows["baseline"]
    )
    assert 0 <= rows["conditional"]["retrieval_composed_synthetic_recall_at_10"] <= 1
    assert set(metrics["retrieval_verdicts"]) == {"conditional"}
    assert len(metrics["run"]["data_checksum"]) == 64
    assert metrics["run"]["git_commit"] == _git(evaluated, "rev-parse", "HEAD")
    details = json.loads((evaluated / "data/08_reporting/evaluation/details.json").read_text())
    per_class = details["retrieval"]["models"]["conditional"]["composed"]["fused"]["per_class"]
    assert per_class and all("map_at_100" in v for v in per_class.values())


def test_report_samples_and_figures(evaluated):
    report = (evaluated / "reports/model_comparison.md").read_text()
    for name in MODELS:
        assert f"| **{name}** |" in report
    assert "real train vs test (floor)" in report and "N = 50" in report
    assert "synthetic query **beats**" in report or "synthetic query **does not beat**" in report
    samples = {p.name for p in (evaluated / "data/07_model_output/samples").iterdir()}
    assert samples == {f"{name}.safetensors" for name in MODELS}
    figures = {p.name for p in (evaluated / "reports/figures/evaluation").iterdir()}  # saved once
    expected = {
        f"{m}_{kind}.png"
        for m in MODELS
        for kind in ("class_samples", "interpolation", "confusion")
    }
    expected |= {"conditional_noise_variation.png", "conditional_retrieval_examples.png"}
    assert expected <= figures
    assert (
        evaluated / "reports/figures/evaluation/conditional_confusion.png"
    ).stat().st_size > 1000
    assert not (evaluated / "data/08_reporting/evaluation/figures").exists()


def test_mlflow_run_has_metrics_tags_params_and_artifacts(evaluated):
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{evaluated / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("fashiongan").experiment_id
    (run,) = client.search_runs(
        [experiment], filter_string="tags.mlflow.runName LIKE '%evaluation'"
    )
    assert {"baseline/fid_evaluator", "floor/fid_evaluator", "conditional/d_f1"} <= set(
        run.data.metrics
    )
    assert re.fullmatch(r"[0-9a-f]{40}", run.data.tags["git_commit"])  # clean checkout: no -dirty
    assert run.data.tags["git_commit"] == _git(evaluated, "rev-parse", "HEAD")
    assert len(run.data.tags["data_checksum"]) == 64
    assert run.data.params["evaluation.retrieval.n_queries"] == "12"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert "model_comparison.md" in artifacts
    figures = {a.path for a in client.list_artifacts(run.info.run_id, "figures/evaluation")}
    assert {
        "figures/evaluation/conditional_retrieval_examples.png",
        "figures/evaluation/vae_confusion.png",
    } <= figures
