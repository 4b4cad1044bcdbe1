"""Project hooks: every parameter block is checked before any work starts; every MLflow run says
what it is (name, command, code, data) and how it ended (FINISHED, FAILED, or KILLED by Ctrl-C /
SIGTERM); the models a training run wrote are logged to it and registered."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl
from pydantic import BaseModel

from fashiongan.config import parse_parameters
from fashiongan.errors import one_line
from fashiongan.lifecycle import records, signals
from fashiongan.lifecycle.records import RunWatch
from fashiongan.lifecycle.variant_lock import VariantLocks, is_launcher_rank, training_folders
from fashiongan.registry import publish, run_tags


class ConfigHook:
    """Checks every parameter block (with ``--params`` applied) as soon as the context exists.

    This runs before the catalog is built, before MLflow opens a run and before any data loads,
    so a misspelt key or an out-of-range value fails in seconds with one line naming the key.
    Kedro then builds each node's typed ``params:`` inputs from the node's type hints
    (:mod:`fashiongan.config` models), which cannot fail once this check has passed.
    """

    @hook_impl(tryfirst=True)
    def after_context_created(self, context: Any) -> None:
        parse_parameters(dict(context.config_loader["parameters"]))

    @hook_impl(tryfirst=True)
    def before_node_run(self, inputs: dict[str, Any]) -> dict[str, Any] | None:
        """Show the other hooks each typed block as its plain dict; give the node the block.

        kedro-mlflow logs a node's ``params:`` inputs, flattened to one MLflow parameter per key
        (``baseline.training.batch_size``), only when they are dicts; a typed block would be
        logged as one long string. This hook runs first and swaps the dict form into the shared
        ``inputs`` the later hooks read; its return value hands the node the typed block again.
        """
        typed = {name: value for name, value in inputs.items() if isinstance(value, BaseModel)}
        for name, block in typed.items():
            inputs[name] = block.model_dump(mode="json")
        return typed or None


class TrainingLockHook:
    """One training of a variant at a time, in a checkpoint folder that can be written.

    Before MLflow opens a run (kedro-mlflow starts it in its own ``before_pipeline_run``), the
    checkpoint folder of every training block the pipeline reads is created and locked for the
    variant (:mod:`fashiongan.lifecycle.variant_lock`); a second training of the same variant,
    or a ``checkpoint_dir`` that is a file or cannot be written, is refused in one line.
    """

    def __init__(self) -> None:
        self._params: dict[str, Any] = {}
        self._locks = VariantLocks()

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        try:
            self._params = dict(context.params)
        except Exception:  # a bad parameter is ConfigHook's to report, in one line
            self._params = {}

    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, pipeline: Any) -> None:
        params_read = [name for name in pipeline.inputs() if name.startswith("params:")]
        folders = training_folders(params_read, self._params)
        if folders and is_launcher_rank():
            self._locks.acquire(folders, str(self._params.get("run_name") or "default"))

    @hook_impl
    def after_pipeline_run(self) -> None:
        self._locks.release()

    @hook_impl
    def on_pipeline_error(self) -> None:
        self._locks.release()


class RunRecordHook:
    """Makes the MLflow record of a run say how it ended: FINISHED, FAILED, or KILLED.

    kedro-mlflow ends the run FINISHED after the pipeline and FAILED on an exception; Kedro calls
    no hook for a ``KeyboardInterrupt``. While a pipeline runs, SIGTERM raises like Ctrl-C and
    the run is watched: if the process leaves without the pipeline finishing or failing, the
    run is ended KILLED at exit. Each run is tagged with its process, and the runs of the same
    variant that a SIGKILL left RUNNING are closed KILLED, naming the run that takes over
    (:mod:`fashiongan.lifecycle.records`). Checkpoints are written atomically, so the last one
    survives and the same command resumes from it.
    """

    def __init__(self) -> None:
        self._outer_run: str | None = None
        self._variant = "default"
        self._watch = RunWatch()

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        """Note a run opened before the session (kedro-mlflow logs into it but does not end
        it) and the variant; forget the run kedro-mlflow kept from an earlier session."""
        import mlflow

        records.forget_kedro_mlflow_run()
        active = mlflow.active_run()
        self._outer_run = None if active is None else active.info.run_id
        try:
            self._variant = str(context.params.get("run_name") or "default")
        except Exception:  # a bad parameter is ConfigHook's to report, in one line
            self._variant = "default"

    @hook_impl(trylast=True)  # after kedro-mlflow's, which starts the run
    def before_pipeline_run(self, run_params: dict[str, Any]) -> None:
        import mlflow

        active = mlflow.active_run()
        if active is not None and active.info.run_id != self._outer_run:
            self._watch.start(active.info.run_id)
            records.while_store_busy(lambda: mlflow.set_tags(records.process_tags()))
            variant = run_tags.variant_of(run_params, self._variant)
            records.close_orphans(
                mlflow.MlflowClient(), active.info, run_tags.variant_tags(run_params, variant)
            )
        signals.sigterm_interrupts()

    @hook_impl(tryfirst=True)
    def after_pipeline_run(self) -> None:
        self._forget()

    @hook_impl(tryfirst=True)
    def on_pipeline_error(self) -> None:
        self._forget()

    def _forget(self) -> None:
        """The pipeline ended (kedro-mlflow records how): stop watching, restore SIGTERM."""
        self._watch.stop()
        signals.sigterm_default()


#: Set to 0 to log and register no models at the end of training runs (quick experiments).
REGISTER_ENV = "FASHIONGAN_REGISTER_MODELS"
#: run_params keys kedro-mlflow logs as Python reprs of lists/dicts: rewritten as plain text.
_LISTED = ("pipeline_names", "namespaces", "tags", "node_names", "from_nodes", "to_nodes",
           "from_inputs", "to_outputs", "load_versions", "runtime_params")  # fmt: skip

log = logging.getLogger(__name__)


class RunNamingHook:
    """Names and tags each MLflow run for what it is; logs and registers the models it trained.

    The run is named ``<pipeline>[.<namespace>][.<run_name>][@<env>]`` (``train_gan.conditional``,
    ``train_gan.conditional.tuned``, ``train_gan.conditional@smoke``; the variant ``default`` is
    left out) and tagged with the command as typed, the Kedro environment and variant, the git
    commit and dirty flag, the SHA-256 of every data file the pipeline reads, and the DVC stage or
    experiment that launched it. kedro-mlflow's own tags are kept but written as text (no list or
    object reprs). The experiment is marked as classic model training, so the MLflow UI opens on
    its runs table. When the pipeline has run, each model folder it wrote under
    ``models/<family>/<run_name>/`` is logged to the run as a pyfunc and registered as
    ``fashiongan-<family>`` (see :mod:`fashiongan.registry.publish`).
    """

    def __init__(self) -> None:
        self._variant, self._run_id, self._outer_run = "default", None, None

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        """Note the variant, and a run opened before the session (not ours to name)."""
        import mlflow

        active = mlflow.active_run()
        self._outer_run = None if active is None else active.info.run_id
        try:
            self._variant = str(context.params.get("run_name") or "default")
        except Exception:  # a bad parameter is ConfigHook's to report, in one line
            self._variant = "default"

    @hook_impl(trylast=True)  # after kedro-mlflow's, which starts the run
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        import mlflow

        self._run_id = None
        active = mlflow.active_run()
        if active is None or active.info.run_id == self._outer_run:
            return
        self._run_id = active.info.run_id
        self._variant = run_tags.variant_of(run_params, self._variant)
        mlflow.set_tags(_run_tags(run_params, self._variant, _input_paths(pipeline, catalog)))
        experiment = active.info.experiment_id
        client = mlflow.MlflowClient()
        if client.get_experiment(experiment).tags.get("mlflow.experimentKind") is None:
            client.set_experiment_tag(experiment, "mlflow.experimentKind", run_tags.EXPERIMENT_KIND)

    @hook_impl(tryfirst=True)  # before kedro-mlflow's, which ends the run
    def after_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        import mlflow

        active = mlflow.active_run()
        if self._run_id is None or active is None or active.info.run_id != self._run_id:
            return
        project = Path(run_params.get("project_path") or Path.cwd())
        written = [_absolute(p, project) for p in _paths(pipeline.all_outputs(), catalog).values()]
        folders = publish.model_folders(written, project / "models")
        register = os.environ.get(REGISTER_ENV, "1") != "0"
        tags = {"fashiongan.kedro_env": str(run_params.get("env") or "local"),
                "fashiongan.run_name": self._variant}  # fmt: skip
        for family, folder in sorted(folders.items()):
            shown = _shown(folder, project)
            try:
                version = publish.log_and_register(
                    family, folder, {**tags, "fashiongan.model_dir": shown}, register
                )
            except Exception as err:  # the model is saved; the run must still end FINISHED
                log.warning("%s was not logged to MLflow: %s", shown, one_line(err))
                mlflow.set_tag(f"fashiongan.model_error.{family}", one_line(err)[:500])
                continue
            if version is not None:
                log.info("registered %s version %s (%s)", version.name, version.version, shown)


def _run_tags(run_params: dict[str, Any], variant: str, inputs: dict[str, Path]) -> dict[str, str]:
    """Every tag :class:`RunNamingHook` writes at the start of a run."""
    project = Path(run_params.get("project_path") or Path.cwd())
    env = run_params.get("env")
    pipelines = run_params.get("pipeline_names") or ["__default__"]
    experiment = os.environ.get("DVC_EXP_NAME")
    name = run_tags.run_name(pipelines, run_params.get("namespaces"), variant, env, experiment)
    runner = str(run_params.get("runner") or "")
    plain = {  # kedro-mlflow wrote these as the reprs of lists and dicts
        key: run_tags.params_text(value) if isinstance(value, dict) else ",".join(map(str, value))
        for key in _LISTED
        if (value := run_params.get(key))
    }
    return {
        **plain,
        "mlflow.runName": name,
        "runner": re.sub(r"^<(?:[\w.]+\.)?(\w+) object at 0x[0-9a-f]+>$", r"\1", runner),
        "kedro_command": run_tags.equivalent_command(run_params),
        "fashiongan.command": run_tags.command_line(run_tags.argv(), run_params),
        **run_tags.variant_tags(run_params, variant),
        **run_tags.git_state(project),
        **run_tags.dvc_tags(),
        **run_tags.data_tags(inputs, project),
    }


def _paths(names: Any, catalog: Any) -> dict[str, Path]:
    """Dataset name → the file or folder it is stored at, for the catalog's file datasets."""
    out = {}
    for name in sorted(names):
        if name == "parameters" or name.startswith("params:"):
            continue
        try:
            dataset = catalog.get(name)
        except Exception:  # a dataset that cannot even be built is the run's to report
            continue
        if dataset is not None and (path := run_tags.dataset_path(dataset)) is not None:
            out[name] = path
    return out


def _input_paths(pipeline: Any, catalog: Any) -> dict[str, Path]:
    """The files the pipeline reads and does not write itself (its free inputs)."""
    return _paths(pipeline.inputs(), catalog)


def _absolute(path: Path, project: Path) -> Path:
    return path if path.is_absolute() else project / path


def _shown(path: Path, project: Path) -> str:
    return (path.relative_to(project) if path.is_relative_to(project) else path).as_posix()
