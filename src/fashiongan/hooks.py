"""Project hooks: every parameter block is checked before any work starts."""

from __future__ import annotations

from typing import Any

from kedro.framework.hooks import hook_impl
from pydantic import BaseModel

from fashiongan.config import parse_parameters


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
