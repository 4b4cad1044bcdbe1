"""Run Kedro pipelines under torchrun with one set of outputs and one MLflow run.

    torchrun --nproc_per_node=2 -m fashiongan.training.launch --pipelines=train_gan \\
        --namespaces=baseline [--env=team] [--params=baseline.training.iterations=5000]

Every rank runs the same nodes in the same order, so the training nodes meet in the same
collectives (``training.distributed``). Rank 0 runs the pipeline exactly as ``kedro run`` does:
catalog outputs, kedro-mlflow's run, parameters, metrics and artifacts. The other ranks load the
same inputs, keep every output in memory and run without the kedro-mlflow hooks, so they neither
overwrite files nor open MLflow runs of their own. Without torchrun (``WORLD_SIZE`` unset) this is
a plain ``kedro run``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from fashiongan.training import distributed


def _split(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def _params(value: str | None) -> dict[str, Any]:
    """``a.b=1,c=x`` → ``{"a": {"b": 1}, "c": "x"}`` as ``kedro run --params`` reads it."""
    from omegaconf import OmegaConf

    items = _split(value)
    for item in items:
        if "=" not in item or not item.partition("=")[0].strip():
            raise SystemExit(f"--params item {item!r} must be key=value")
    return OmegaConf.to_container(OmegaConf.from_dotlist(items)) if items else {}


def run(
    pipelines: list[str],
    namespaces: list[str] | None = None,
    env: str | None = None,
    params: dict[str, Any] | None = None,
    project_path: Path | None = None,
) -> dict[str, Any]:
    """Run the pipelines on this rank as described in the module docstring."""
    from kedro.framework.project import settings
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    os.environ[distributed.LAUNCHER_ENV] = "1"
    project_path = (project_path or Path.cwd()).resolve()
    bootstrap_project(project_path)
    rank = int(os.environ.get("RANK", "0"))
    if rank == 0:
        with KedroSession.create(project_path, env=env, runtime_params=params) as session:
            return session.run(pipeline_names=pipelines, namespaces=namespaces or None)

    from kedro.framework.project import pipelines as registry
    from kedro.io import DataCatalog
    from kedro.pipeline import Pipeline
    from kedro.runner import SequentialRunner

    # No kedro-mlflow here: its hooks would set up the experiment and open a run on every rank
    # (pluggy names the distribution kedro_mlflow, pip kedro-mlflow: block both spellings).
    disabled = tuple(settings.DISABLE_HOOKS_FOR_PLUGINS) + ("kedro-mlflow", "kedro_mlflow")
    settings.set("DISABLE_HOOKS_FOR_PLUGINS", disabled)
    logging.getLogger("kedro").setLevel(logging.WARNING)  # rank 0 reports the run
    registry.set_requested(pipelines)  # import only these pipelines, as `kedro run` does
    with KedroSession.create(project_path, env=env, runtime_params=params) as session:
        context = session.load_context()
        pipeline = sum((registry[name] for name in pipelines), Pipeline([])).filter(
            node_namespaces=namespaces or None
        )
        # Free inputs (data, parameters) from the project's catalog; every output in memory.
        inputs = {name: context.catalog.get(name) for name in pipeline.inputs()}
        SequentialRunner().run(pipeline, DataCatalog(datasets=inputs))
    return {}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fashiongan.training.launch")
    parser.add_argument("--pipelines", "--pipeline", required=True, help="comma-separated names")
    parser.add_argument("--namespaces", "--namespace", help="comma-separated node namespaces")
    parser.add_argument("--env", "-e", help="Kedro configuration environment, e.g. team")
    parser.add_argument("--params", help="key=value,... overrides, as for kedro run")
    args = parser.parse_args(argv)
    run(_split(args.pipelines), _split(args.namespaces), args.env, _params(args.params))
    distributed.teardown()  # not on failure: torchrun stops the other ranks then


if __name__ == "__main__":
    main(sys.argv[1:])
