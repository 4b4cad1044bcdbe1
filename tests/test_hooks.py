"""Project hooks: a bad parameter fails in one line before any work; each MLflow run is named and
tagged for what it is (``RunNamingHook`` and its helpers in ``fashiongan.registry.run_tags``)."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path

import pytest

from fashiongan.hooks import _run_tags
from fashiongan.registry import run_tags
from tests.conftest import kedro_run_failure, kedro_run_failure_in_process

CASES = [
    (
        ["--namespaces=baseline", "--params", "baseline.training.iteratons=5"],
        "baseline.training.iteratons: unknown key; did you mean `iterations`?",
    ),
    (
        ["--namespaces=conditional", "--params", "conditional.training.loss=foo"],
        "conditional.training.loss: input should be 'bce', 'wgan-gp' or 'hinge', got 'foo'",
    ),
    (
        ["--namespaces=baseline", "--params", "baseline.training.batch_size=0"],
        "baseline.training.batch_size: input should be greater than or equal to 1, got 0",
    ),
]


@pytest.mark.slow
def test_bad_parameters_fail_in_one_line_before_any_work(kedro_project):
    for number, (args, expected) in enumerate(CASES):
        # the first as a user types it, the others in this process (seconds faster)
        run_failure = kedro_run_failure_in_process if number else kedro_run_failure
        line = run_failure(kedro_project, "--pipelines=train_gan", *args)
        assert line == f"Error: bad parameter: {expected}"
        assert not (kedro_project / "data" / "05_model_input").exists()  # nothing ran
    assert not list((kedro_project / "data").rglob("*.safetensors"))


# --- RunNamingHook's pieces (fashiongan.registry.run_tags) -------------------------------------

RUN_PARAMS = {
    "pipeline_names": ["train_gan"],
    "namespaces": ["conditional"],
    "env": None,
    "runtime_params": {"run_name": "tuned", "conditional": {"training": {"epochs": 2}}},
    "tags": None,
}


@pytest.mark.parametrize(
    ("pipelines", "namespaces", "variant", "env", "expected"),
    [
        (["train_gan"], ["conditional"], "tuned", None, "train_gan.conditional.tuned"),
        (["train_gan"], ["conditional"], "default", "local", "train_gan.conditional"),
        (["train_gan"], ["baseline"], "smoke", "smoke", "train_gan.baseline.smoke"),
        (["train_gan"], ["baseline"], "default", "smoke", "train_gan.baseline@smoke"),
        (["data_processing", "evaluation"], None, "default", None, "data_processing+evaluation"),
        ([], None, "default", None, "__default__"),
    ],
)
def test_run_names_say_pipeline_namespace_variant_and_env(
    pipelines, namespaces, variant, env, expected
):
    assert run_tags.run_name(pipelines, namespaces, variant, env) == expected


def test_a_dvc_experiment_names_its_run():
    named = run_tags.run_name(["train_gan"], ["conditional"], "default", None, "epochs2")
    assert named == "train_gan.conditional (dvc exp epochs2)"


def test_the_command_is_as_typed_or_rebuilt_from_the_session():
    typed = ["/x/.venv/bin/kedro", "run", "--namespaces=conditional", "--params", "a=1,b=two words"]
    assert run_tags.command_line(typed, RUN_PARAMS) == (
        "kedro run --namespaces=conditional --params 'a=1,b=two words'"
    )
    module = ["python -m kedro", "run", "--pipelines=train_gan"]  # as Kedro's __main__ sets it
    assert run_tags.command_line(module, RUN_PARAMS) == "kedro run --pipelines=train_gan"
    assert run_tags.command_line(["/x/bin/pytest", "-q"], RUN_PARAMS) == (
        "kedro run --pipelines=train_gan --namespaces=conditional "
        "--params=run_name=tuned,conditional.training.epochs=2"
    )


def test_dvc_stage_and_experiment_come_from_dvcs_variables():
    environ = {"DVC_STAGE": "train_conditional", "DVC_EXP_NAME": "exp-1a2b", "DVC_ROOT": "/p"}
    assert run_tags.dvc_tags(environ) == {
        "fashiongan.dvc.stage": "train_conditional",
        "fashiongan.dvc.experiment": "exp-1a2b",
    }
    assert run_tags.dvc_tags({}) == {}


def _git(folder, *args):
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=folder, check=True, capture_output=True,
    )  # fmt: skip


def test_git_state_names_the_commit_and_whether_it_is_dirty(tmp_path):
    assert run_tags.git_state(tmp_path) == {"fashiongan.git.commit": "unknown"}  # no checkout
    _git(tmp_path, "init", "-q")
    (tmp_path / "tracked.txt").write_text("one\n")
    _git(tmp_path, "add", "tracked.txt")
    _git(tmp_path, "commit", "-q", "-m", "first")
    state = run_tags.git_state(tmp_path)
    assert re.fullmatch(r"[0-9a-f]{40}", state["fashiongan.git.commit"])
    assert state["fashiongan.git.dirty"] == "false"
    (tmp_path / "untracked.txt").write_text("ignored\n")
    assert run_tags.git_state(tmp_path)["fashiongan.git.dirty"] == "false"
    (tmp_path / "tracked.txt").write_text("two\n")
    assert run_tags.git_state(tmp_path)["fashiongan.git.dirty"] == "true"


def test_data_digests_are_sha256sum_lines_and_cached_by_size_and_mtime(tmp_path, monkeypatch):
    monkeypatch.setattr(run_tags, "DIGEST_CACHE", tmp_path / "cache")
    data = tmp_path / "data/x.bin"
    data.parent.mkdir()
    data.write_bytes(b"abc")
    tags = run_tags.data_tags({"x": Path("data/x.bin"), "gone": Path("data/nope")}, tmp_path)
    assert tags == {"fashiongan.sha256.x": f"{hashlib.sha256(b'abc').hexdigest()}  data/x.bin"}
    cache = json.loads((tmp_path / "cache/sha256.json").read_text())
    assert cache[str(data.resolve())][2] == hashlib.sha256(b"abc").hexdigest()
    calls = []
    monkeypatch.setattr(hashlib, "sha256", lambda *a: calls.append(a) or _real_sha256(*a))
    run_tags.data_tags({"x": data}, tmp_path)
    assert calls == []  # unchanged file: not read again


_real_sha256 = hashlib.sha256


def test_kedro_mlflows_reprs_are_rewritten_as_text(tmp_path, monkeypatch):
    monkeypatch.setattr(run_tags, "DIGEST_CACHE", tmp_path / "cache")
    params = {**RUN_PARAMS, "project_path": str(tmp_path), "load_versions": {"a": "2026"},
              "runner": "<kedro.runner.sequential_runner.SequentialRunner object at 0x7f00>"}  # fmt: skip
    tags = _run_tags(params, "tuned", {})
    assert tags["runner"] == "SequentialRunner"
    assert tags["pipeline_names"] == "train_gan" and tags["namespaces"] == "conditional"
    assert tags["load_versions"] == "a=2026"
    assert tags["runtime_params"] == "run_name=tuned,conditional.training.epochs=2"
    assert tags["mlflow.runName"] == "train_gan.conditional.tuned"
    assert tags["fashiongan.kedro_env"] == "local" and tags["fashiongan.run_name"] == "tuned"
    assert not [v for v in tags.values() if re.search(r"object at 0x|^\[|^\{", v)]


def test_an_untracked_pipeline_after_a_tracked_one_in_the_same_process(tmp_path, monkeypatch):
    """A notebook (or this test process) trains in one project, then runs ingestion in another:
    kedro-mlflow's process-wide hook must not reopen the first project's run (whose store the
    second project cannot see) before each ingestion node."""
    from tests.conftest import make_kedro_project, run_pipeline

    first = make_kedro_project(tmp_path / "first", monkeypatch)
    run_pipeline(first, ["data_processing"])
    run_pipeline(first, ["train_evaluator"])  # tracked: kedro-mlflow keeps its run id
    second = make_kedro_project(tmp_path / "second", monkeypatch)
    run_pipeline(second, ["data_processing"])  # untracked: used to fail "Run … not found"
    assert (second / "data/05_model_input/fashion_mnist.safetensors").is_file()
