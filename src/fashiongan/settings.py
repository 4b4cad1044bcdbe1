"""Kedro project settings.

kedro-mlflow registers its hook through its plugin entry point; ``ConfigHook`` checks every
parameter block before any work starts; ``RunRecordHook`` records a run stopped by Ctrl-C or
SIGTERM as KILLED in MLflow (kedro-mlflow records FINISHED and FAILED). Telemetry is switched off by the
`.telemetry` file in the project root (``consent: false``).
"""

from kedro.config import OmegaConfigLoader

from fashiongan.hooks import ConfigHook, RunRecordHook

HOOKS = (ConfigHook(), RunRecordHook())

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # conf/<env>/parameters*.yml override single nested keys instead of whole top-level blocks.
    "merge_strategy": {"parameters": "soft"},
}
