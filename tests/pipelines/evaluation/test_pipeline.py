"""``kedro run --pipelines=data_processing,evaluation`` on the tiny project, MLflow included.

Every variant under ``models/<family>/<variant>/`` is scored (a second baseline variant,
``tuned``, is added here), and so is a registry URI given in ``registered_models``; the
baseline registered beforehand becomes ``fashiongan-baseline@champion``.
"""

import json
import re
import shutil
import subprocess

import mlflow
import pytest
import yaml
from tests.conftest import run_pipeline
from tests.pipelines.evaluation.conftest import TINY_EVALUATION

from fashiongan.registry.publish import log_and_register

REGISTERED = "fashiongan-baseline/1"  # the row of models:/fashiongan-baseline/1
MODELS = ("baseline/default", "baseline/tuned", "conditional/default", "vae/default", REGISTERED)
CONDITIONAL = "conditional/default"


def _git(project, *args) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=project, check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip


def _register_baseline(project) -> None:
    """``models/baseline/default`` registered as a training run would (version 1)."""
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    mlflow.set_experiment("fashiongan")
    try:
        with mlflow.start_run(run_name="train_gan.baseline"):
            tags = {"fashiongan.kedro_env": "local", "fashiongan.run_name": "default"}
            log_and_register("baseline", project / "models/baseline/default", tags)
    finally:
        mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def evaluated(evaluation_project):
    """The evaluation run inside a git checkout (the project copy is none: make it one), so the
    run records a real commit."""
    project = evaluation_project
    params = {"evaluation": {**TINY_EVALUATION["evaluation"], "registered_models": [f"models:/{REGISTERED}"]}}  # fmt: skip
    local = project / "conf/local/parameters_evaluation.yml"
    before = local.read_text()
    local.write_text(yaml.safe_dump(params))
    _git(project, "init", "-q")
    _git(project, "add", "conf", "pyproject.toml")
    _git(project, "commit", "-q", "-m", "the tiny project's configuration")
    shutil.copytree(project / "models/baseline/default", project / "models/baseline/tuned")
    _register_baseline(project)
    try:
        run_pipeline(project, ["data_processing", "evaluation"])
    finally:
        local.write_text(before)
        shutil.rmtree(project / "models/baseline/tuned")
    return project


def test_metrics_json_has_a_row_a_variant_and_the_references(evaluated):
    folder = evaluated / "data/08_reporting/evaluation/default"
    metrics = json.loads((folder / "metrics.json").read_text())
    assert set(metrics["rows"]) == {*MODELS, "floor", "noise"}
    assert metrics["settings"]["evaluator"]["n_samples"] == 50
    assert metrics["settings"]["inception"] == {
        "enabled": False,
        "note": "inception.enabled is false",
    }
    rows = metrics["rows"]
    # The floor (real train items against the real test items) is the best any model can do:
    # untrained models and noise score a higher FID and a lower coverage (measured: floor FID
    # 0.0, coverage 1.0; models and noise FID 0.02-0.10, coverage 0.0-0.02).
    floor = rows["floor"]
    assert floor["coverage"] >= 0.9
    for name in (*MODELS, "noise"):
        assert rows[name]["fid_evaluator"] > floor["fid_evaluator"], name
        assert rows[name]["coverage"] < floor["coverage"] - 0.5, name
    assert rows["baseline/tuned"]["fid_evaluator"] == rows["baseline/default"]["fid_evaluator"]
    assert "d_accuracy" in rows["baseline/default"] and "d_accuracy" in rows[CONDITIONAL]
    assert "d_accuracy" in rows[REGISTERED]  # its discriminator came from the registry too
    assert "d_accuracy" not in rows["vae/default"]  # no discriminator
    assert "conditional_accuracy" in rows[CONDITIONAL]
    assert "conditional_accuracy" not in rows["baseline/default"]
    assert set(metrics["retrieval_verdicts"]) == {CONDITIONAL}
    assert metrics["run"] == {"data_checksum": metrics["run"]["data_checksum"]}  # git: a tag
    assert len(metrics["run"]["data_checksum"]) == 64
    details = json.loads((folder / "details.json").read_text())
    per_class = details["retrieval"]["models"][CONDITIONAL]["composed"]["fused"]["per_class"]
    assert per_class and all("map_at_100" in v for v in per_class.values())
    # The row carries the protocol's own figures, and the verdict reads them: the untrained
    # generator's synthetic query loses to BERT on the captions (R@10 0.17 vs 1.0 measured).
    measured = details["retrieval"]["models"][CONDITIONAL]
    for kind, method in (("composed", "synthetic"), ("text", "synthetic"), ("text", "text")):
        key = f"retrieval_{kind}_{method}_recall_at_10"
        assert rows[CONDITIONAL][key] == measured[kind][method]["overall"]["recall_at_10"], key
    text = rows[CONDITIONAL]["retrieval_text_text_recall_at_10"]
    assert text > rows[CONDITIONAL]["retrieval_text_synthetic_recall_at_10"] + 0.3
    verdict = metrics["retrieval_verdicts"][CONDITIONAL]
    assert verdict["text_synthetic_beats_baselines"] is False
    assert verdict["text_not_beaten_by_synthetic"] == ["text"]


def test_metrics_table_is_the_rows_as_dvc_plots_reads_them(evaluated):
    """dvc.yaml plots ``table`` (model → fid_evaluator): one record a row, every key in each."""
    vega = pytest.importorskip("dvc.render.converter.vega")
    metrics = json.loads(
        (evaluated / "data/08_reporting/evaluation/default/metrics.json").read_text()
    )
    table = metrics["table"]
    assert [record["model"] for record in table] == list(metrics["rows"])
    assert len({frozenset(record) for record in table}) == 1
    points = vega.get_datapoints(metrics)  # what `dvc plots show` draws from the file
    by_model = {point["model"]: point for point in points}
    assert {name: point["fid_evaluator"] for name, point in by_model.items()} == {
        name: row["fid_evaluator"] for name, row in metrics["rows"].items()
    }
    assert by_model["vae/default"]["d_accuracy"] is None  # no discriminator: null, not left out


def test_the_registered_baseline_becomes_champion_and_the_report_says_so(evaluated):
    champions = json.loads(
        (evaluated / "data/08_reporting/evaluation/default/champions.json").read_text()
    )
    assert set(champions["families"]) == {"baseline"}  # nothing else is registered
    decision = champions["families"]["baseline"]
    assert decision["champion"] == "1" and decision["previous"] is None
    assert decision["model"] in ("baseline/default", "baseline/tuned", REGISTERED)  # same weights
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{evaluated / 'mlflow.db'}")
    assert str(client.get_model_version_by_alias("fashiongan-baseline", "champion").version) == "1"
    report = (evaluated / "reports/model_comparison.md").read_text()
    assert "Alias `champion` in each family: lowest evaluator FID" in report
    assert "| fashiongan-baseline | 1 | — |" in report


def test_report_samples_and_figures(evaluated):
    report = (evaluated / "reports/model_comparison.md").read_text()
    for name in MODELS:
        assert f"| **{name}** |" in report
    assert "real train vs test (floor)" in report and "N = 50" in report
    assert "synthetic query **beats**" in report or "synthetic query **does not beat**" in report
    samples_dir = evaluated / "data/07_model_output/samples/default"
    samples = {p.relative_to(samples_dir).as_posix() for p in samples_dir.rglob("*.safetensors")}
    assert samples == {f"{name}.safetensors" for name in MODELS}
    figures_dir = evaluated / "reports/figures/evaluation"  # saved once
    figures = {p.relative_to(figures_dir).as_posix() for p in figures_dir.rglob("*.png")}
    expected = {
        f"{m}_{kind}.png"
        for m in MODELS
        for kind in ("class_samples", "interpolation", "confusion")
    }
    expected |= {f"{CONDITIONAL}_noise_variation.png", f"{CONDITIONAL}_retrieval_examples.png"}
    assert expected <= figures
    assert (figures_dir / f"{CONDITIONAL}_confusion.png").stat().st_size > 1000
    assert not (evaluated / "data/08_reporting/evaluation/default/figures").exists()


def test_mlflow_run_has_metrics_tags_params_and_artifacts(evaluated):
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{evaluated / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("fashiongan").experiment_id
    (run,) = client.search_runs(
        [experiment], filter_string="tags.mlflow.runName LIKE '%evaluation'"
    )
    assert {
        "baseline/default/fid_evaluator",
        "floor/fid_evaluator",
        "conditional/default/d_f1",
    } <= set(run.data.metrics)
    tags = run.data.tags
    assert run.info.run_name == "data_processing+evaluation"
    assert tags["fashiongan.git.commit"] == _git(evaluated, "rev-parse", "HEAD")
    assert tags["fashiongan.git.dirty"] == "false"  # conf and pyproject as committed
    digest, path = tags["fashiongan.sha256.fashion_mnist_captions"].split("  ")
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert path == "data/04_feature/fashion_mnist_captions.parquet"
    assert "fashiongan.sha256.fashion_mnist_model_input" not in tags  # written by this run
    assert run.data.params["evaluation.retrieval.n_queries"] == "12"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert "model_comparison.md" in artifacts
    figures = {
        a.path for a in client.list_artifacts(run.info.run_id, "figures/evaluation/conditional")
    }
    assert "figures/evaluation/conditional/default_retrieval_examples.png" in figures
