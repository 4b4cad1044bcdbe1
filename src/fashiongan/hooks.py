"""Project hooks: every parameter block is checked before any work starts."""

from __future__ import annotations

from typing import Any

from kedro.framework.hooks import hook_impl

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
