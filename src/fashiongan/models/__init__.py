"""Torch modules, one model family a file."""

from __future__ import annotations

from typing import Any


def without_retired(values: dict[str, Any], retired: dict[str, Any]) -> dict[str, Any]:
    """A saved config's ``values`` less the options that left the code (``retired``: each with
    the value the code now always has), so files written before they left still load.

    Raises:
        ValueError: naming an option the file was trained with at another value.
    """
    kept = dict(values)
    for name, value in retired.items():
        if name in kept and kept.pop(name) != value:
            raise ValueError(
                f"this model was trained with {name}={values[name]!r}, an option no longer in "
                "the code (docs/quality.md has its figures): train it again"
            )
    return kept
