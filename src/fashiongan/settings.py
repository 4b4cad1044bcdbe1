"""Kedro project settings.

kedro-mlflow registers its hook through its plugin entry point; ``ConfigHook`` checks every
parameter block before any work starts; ``TrainingLockHook`` lets one training of a variant run
at a time; ``RunRecordHook`` records a run stopped by Ctrl-C or SIGTERM, or left RUNNING by a
SIGKILL, as KILLED in MLflow (kedro-mlflow records FINISHED and FAILED). Telemetry is switched off by the
`.telemetry` file in the project root (``consent: false``).
"""

from pathlib import Path

from kedro.config import OmegaConfigLoader

from fashiongan.hooks import ConfigHook, RunNamingHook, RunRecordHook, TrainingLockHook

HOOKS = (ConfigHook(), TrainingLockHook(), RunRecordHook(), RunNamingHook())


def project_root() -> str:
    """The project's root folder, absolute, wherever the command runs from.

    The nearest folder up from the working directory with a ``pyproject.toml``; but a DVC
    experiment (``dvc exp run --temp``, ``--queue``) runs its stages in a copy of the project
    under ``<root>/.dvc/tmp/exps/<tmp>/``, deleted afterwards: its runs belong in the real
    project's MLflow store, so the root is then the folder that holds ``.dvc``.
    """
    here = Path.cwd().resolve()
    parts = here.parts
    for i in range(len(parts) - 2):
        if parts[i : i + 3] == (".dvc", "tmp", "exps"):
            return Path(*parts[:i]).as_posix()
    found = next((p for p in (here, *here.parents) if (p / "pyproject.toml").is_file()), here)
    return found.as_posix()


def reports_dir(run_name: str) -> str:
    """``reports`` (the committed figures and reports of the default run), or
    ``reports/variants/<run_name>`` for any other variant, so that one never overwrites them."""
    return "reports" if run_name == "default" else f"reports/variants/{run_name}"


CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # conf/<env>/parameters*.yml override single nested keys instead of whole top-level blocks.
    "merge_strategy": {"parameters": "soft"},
    # ${project_root:} in mlflow.yml, ${reports_dir:<run_name>} in the catalog.
    "custom_resolvers": {"project_root": project_root, "reports_dir": reports_dir},
}
