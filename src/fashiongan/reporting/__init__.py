"""Markdown reports from Jinja2 templates: nodes build a context dict, a template lays it out."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined


def _fmt(value: Any, digits: int = 3) -> str:
    """A table cell: floats rounded, None as an em dash."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


_ENV = Environment(
    loader=PackageLoader("fashiongan.reporting", "templates"),
    undefined=StrictUndefined,  # a context key the template needs but nobody gave is an error
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_ENV.filters["fmt"] = _fmt


def render(template: str, **context: Any) -> str:
    """Render ``templates/<template>`` (e.g. ``evaluation.md.j2``) with ``context``."""
    return _ENV.get_template(template).render(**context)
