"""The MLflow Model Registry: tiny models logged from code, served from ``models:/`` URIs, and the
``champion`` rule (evaluator FID, then conditional accuracy; smoke never beats full)."""

from __future__ import annotations

import io
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from fashiongan.cli import cli
from fashiongan.datasets.safetensors import save_module
from fashiongan.registry import (
    ModelNotFoundError,
    parse_model_uri,
    registered_name,
    resolve_model_dir,
)
from fashiongan.registry.champion import Candidate, pick, promote_evaluated
from fashiongan.registry.publish import log_and_register, model_folders
from tests.evaluation.tiny import tiny_modules


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    """A store with fashiongan-baseline 1 (full) and 2 (smoke, other weights), and
    fashiongan-conditional 1 (full), each from its own run, as training registers them."""
    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("FASHIONGAN_MODEL_CACHE", str(root / "cache"))
    # The store's artifacts go to ./mlruns of the store's folder (made absolute in the store);
    # the tests then run from the project root, where a base text model reads conf/base.
    with pytest.MonkeyPatch.context() as in_store:
        in_store.chdir(root)
        _register_tiny_models(root, uri)
    yield uri
    monkeypatch.undo()


def _register_tiny_models(root: Path, uri: str) -> None:
    """Log and register the store's three model versions, each from its own run."""
    modules = tiny_modules()
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("registry")  # not an earlier Kedro session's experiment id
    try:
        for family, env in (("baseline", "local"), ("baseline", "smoke"), ("conditional", "local")):
            folder = root / "models" / family / env
            for stem, module in modules[family].items():
                if env == "smoke":  # other weights: another version
                    module.load_state_dict({k: v + 1 for k, v in module.state_dict().items()})
                save_module(module, folder / f"{stem}.safetensors")
            with mlflow.start_run(run_name=f"train_gan.{family}"):
                log_and_register(family, folder, {"fashiongan.kedro_env": env})
    finally:
        mlflow.set_tracking_uri(None)


def test_pyfunc_from_a_models_uri_draws_images(store, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    model = mlflow.pyfunc.load_model("models:/fashiongan-conditional/1")
    images = model.predict(pd.DataFrame({"text": ["a dark coat"]}), params={"n": 3, "seed": 1})
    assert images.shape == (1, 3, 28, 28, 1) and images.dtype == np.uint8
    reference = io.BytesIO()
    Image.fromarray(images[0, 0, ..., 0]).save(reference, format="PNG")
    composed = model.predict(
        pd.DataFrame({"text": ["darker"], "image": [reference.getvalue()]}), params={"n": 2}
    )
    assert composed.shape == (1, 2, 28, 28, 1)
    signature = model.metadata.signature
    assert [c.name for c in signature.inputs.inputs] == ["text", "image"]
    assert {p.name for p in signature.params.params} == {"n", "seed"}
    baseline = mlflow.pyfunc.load_model("models:/fashiongan-baseline/1")
    assert baseline.predict(pd.DataFrame({"text": [""]})).shape == (1, 4, 28, 28, 1)


def test_a_logged_model_pickles_nothing(store, monkeypatch):
    folder = resolve_model_dir("models:/fashiongan-conditional/1", tracking_uri=store).parents[1]
    assert not list(folder.rglob("*.pkl")) and not list(folder.rglob("*.pickle"))
    assert (folder / "pyfunc_model.py").is_file()
    assert "python_model" not in (folder / "MLmodel").read_text().split("model_code_path")[0]


def test_resolve_model_dir_gives_the_training_folder_back(store, tmp_path):
    folder = resolve_model_dir("models:/fashiongan-conditional/1", tracking_uri=store)
    assert {p.name for p in folder.iterdir()} == {
        "generator.safetensors",
        "discriminator.safetensors",
        "embedder.safetensors",
    }
    assert resolve_model_dir(tmp_path) == tmp_path  # a path is a path


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("models:/nope@champion", "no registered model 'nope' (have: fashiongan-baseline, "
         "fashiongan-conditional)"),
        ("models:/fashiongan-baseline@best", "no models:/fashiongan-baseline@best (versions: 1, 2;"
         " aliases: "),
        ("models:/fashiongan-baseline/9", "no models:/fashiongan-baseline/9 (versions: 1, 2;"),
        ("models:/fashiongan-baseline", "is not a registry URI"),
    ],
)  # fmt: skip
def test_an_unknown_name_alias_or_version_names_what_exists(store, uri, message):
    with pytest.raises(ModelNotFoundError) as raised:
        resolve_model_dir(uri, tracking_uri=store)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_generate_from_a_models_uri(store, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    out = tmp_path / "x.npz"
    args = ["--model", "models:/fashiongan-conditional/1", "--text", "a dark coat", "--n", "4"]
    result = CliRunner().invoke(cli, ["generate", *args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert np.load(out)["images"].shape == (4, 28, 28)


def test_generate_with_a_bad_models_uri_is_one_line(store, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    args = ["--model", "models:/fashiongan-conditional@champion", "--text", "a coat"]
    result = CliRunner().invoke(cli, ["generate", *args, "--out", str(tmp_path / "x.npz")])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "Error: no models:/fashiongan-conditional@champion (versions: 1; aliases: none)"
    ]


def _candidate(version, fid, accuracy=None, smoke=False) -> Candidate:
    return Candidate(str(version), f"row{version}", fid, accuracy, smoke)


def test_champion_rule_fid_then_conditional_accuracy():
    best = pick([_candidate(1, 5.0, 0.9), _candidate(2, 4.0, 0.1), _candidate(3, 4.0, 0.5)], False)
    assert best.version == "3"
    assert pick([_candidate(1, float("nan")), _candidate(2, 9.0)], False).version == "2"


def test_a_smoke_version_never_beats_a_full_one():
    smoke, full = _candidate(1, 0.1, smoke=True), _candidate(2, 50.0)
    assert pick([smoke, full], current_is_full=False) is full
    assert pick([smoke], current_is_full=True) is None  # the full champion stays
    assert pick([smoke], current_is_full=False) is smoke  # nothing full yet: smoke may serve


def test_promotion_in_the_store_keeps_a_full_champion_from_smoke(store):
    client = mlflow.MlflowClient(tracking_uri=store)
    digests = {
        str(v.version): v.tags["fashiongan.tensors_sha256"]
        for v in client.search_model_versions("name='fashiongan-baseline'")
    }
    rows = {"1": {"fid_evaluator": 30.0}, "2": {"fid_evaluator": 1.0}}  # smoke scores better
    decided = promote_evaluated(client, digests, rows, ("baseline", "vae"))
    assert set(decided) == {"baseline"}  # nothing registered as vae
    assert decided["baseline"]["champion"] == "1" and decided["baseline"]["model"] == "1"
    champion = client.get_model_version_by_alias("fashiongan-baseline", "champion")
    assert str(champion.version) == "1"
    later = promote_evaluated(client, {"2": digests["2"]}, rows, ("baseline",))
    assert later["baseline"]["champion"] == "1"  # only smoke scored: the full one stays
    assert "smoke" in later["baseline"]["reason"]


def test_model_folders_are_found_from_the_files_a_run_wrote(tmp_path):
    models = tmp_path / "models"
    for path in ("conditional/tuned/text_encoder", "evaluator/default", "autoencoders/default"):
        (models / path).mkdir(parents=True)
    written = [
        models / "conditional/tuned/generator.safetensors",
        models / "conditional/tuned/text_encoder",
        models / "evaluator/default/evaluator.safetensors",
        models / "autoencoders/default/vae.safetensors",  # not a registered family
        tmp_path / "data/08_reporting/x.csv",
    ]
    assert model_folders(written, models) == {
        "conditional": models / "conditional/tuned",
        "evaluator": models / "evaluator/default",
    }


def test_uri_parsing():
    assert parse_model_uri("models:/fashiongan-vae@champion").alias == "champion"
    assert parse_model_uri("models:/fashiongan-vae/3").version == "3"
    assert registered_name("vae") == "fashiongan-vae"
