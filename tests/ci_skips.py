"""Under CI, a skipped test fails unless what it needs cannot be had on this machine.

A skip is matched to a real component by its reason (Chromium, PostgreSQL, a tmpfs mount, the
real Fashion-MNIST, the real Inception). It is accepted only where that component truly cannot
be had here (``make test`` installs or fetches everything else as root with apt), and then
pytest's summary says why in a "components not available here" section; any other skip under
``CI=true`` is reported as a failure naming the component. Loaded from tests/conftest.py.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass

import pytest

CAP_SYS_ADMIN = 21  # bit in /proc/self/status CapEff: what mounting a tmpfs needs


@dataclass(frozen=True)
class Component:
    """A real component some tests need, and why it may not be available.

    Attributes:
        name: what the summary calls it.
        reason_pattern: a regular expression a skip's reason matches when this component is missing.
        unavailable: returns why the component cannot be had on this machine, or None if it can.
    """

    name: str
    reason_pattern: str
    unavailable: Callable[[], str | None]


def ci_enabled() -> bool:
    """True when the ``CI`` environment variable is set to a true value."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _not_installable_by_make() -> str | None:
    """`make test-deps` installs with apt-get as root; elsewhere it cannot."""
    if os.geteuid() != 0:
        return "not root: `make test-deps` cannot apt-get install it"
    if shutil.which("apt-get") is None:
        return "no apt-get: `make test-deps` cannot install it"
    return None


def _cannot_mount() -> str | None:
    """Mounting a tmpfs needs root with CAP_SYS_ADMIN (a plain container lacks it)."""
    if os.geteuid() != 0:
        return "not root: cannot mount a tmpfs"
    with open("/proc/self/status") as status:
        caps = next(line for line in status if line.startswith("CapEff:"))
    if not int(caps.split()[1], 16) >> CAP_SYS_ADMIN & 1:
        return "root without CAP_SYS_ADMIN (a container): cannot mount a tmpfs"
    return None


def _always_available() -> str | None:
    """`make test` fetches or installs it: a skip means the step that should have failed did not."""
    return None


COMPONENTS = (
    Component("Chromium", r"\bChromium\b", _not_installable_by_make),
    Component("PostgreSQL", r"\bPostgreSQL\b", _not_installable_by_make),
    Component("tmpfs (root)", r"\btmpfs\b", _cannot_mount),
    Component("real Fashion-MNIST", r"real Fashion-MNIST", _always_available),
    Component("real Inception-v3", r"Inception", _always_available),
)


def skip_reason(longrepr: object) -> str:
    """The reason of a skip report (pytest stores ``(path, lineno, "Skipped: reason")``)."""
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return reason.removeprefix("Skipped: ")


def judge_skip(reason: str) -> tuple[str, str | None]:
    """The component a skip is about and why it cannot be had here (None: CI must not skip it)."""
    for component in COMPONENTS:
        if re.search(component.reason_pattern, reason):
            return component.name, component.unavailable()
    return "no known component", None


def ci_failure(reason: str) -> str | None:
    """The failure message for a skip CI does not accept, or None where it is accepted."""
    if not ci_enabled():
        return None
    component, why_unavailable = judge_skip(reason)
    if why_unavailable is not None:
        return None
    return (
        f"CI=true: skipped although {component} can be had here (`make test` installs or "
        f"fetches it): {reason}"
    )


class SkippedModule(pytest.Item):
    """Stands for a module skipped at import, so that CI reports the skip as one failed test."""

    def __init__(self, *, message: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.message = message

    def runtest(self) -> None:
        pytest.fail(self.message, pytrace=False)

    def reportinfo(self) -> tuple:
        return self.path, None, self.name


class CISkipRule:
    """The pytest plugin: turns the skips CI does not accept into failures, lists the others."""

    def __init__(self) -> None:
        self.accepted: dict[str, set[str]] = {}

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item, call):
        report = yield
        if report.skipped and not hasattr(report, "wasxfail"):
            message = ci_failure(skip_reason(report.longrepr))
            if message is not None:
                report.outcome, report.longrepr = "failed", message
        return report

    @pytest.hookimpl(wrapper=True)
    def pytest_make_collect_report(self, collector):
        report = yield
        if report.skipped:
            message = ci_failure(skip_reason(report.longrepr))
            if message is not None:
                stand_in = SkippedModule.from_parent(collector, name="skipped", message=message)
                report.outcome, report.longrepr, report.result = "passed", None, [stand_in]
        return report

    # The reports reach these two in the main process, with or without pytest-xdist.
    def pytest_runtest_logreport(self, report) -> None:
        self._note_accepted(report)

    def pytest_collectreport(self, report) -> None:
        self._note_accepted(report)

    def _note_accepted(self, report) -> None:
        if ci_enabled() and report.skipped and not hasattr(report, "wasxfail"):
            component, why_unavailable = judge_skip(skip_reason(report.longrepr))
            if why_unavailable is not None:
                key = f"{component}: {why_unavailable}"
                self.accepted.setdefault(key, set()).add(report.nodeid)

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.accepted:
            terminalreporter.section("components not available here (skips CI accepts)")
            for why, nodeids in sorted(self.accepted.items()):
                listed = ", ".join(sorted(nodeids))
                terminalreporter.line(f"{why} ({len(nodeids)} skipped: {listed})")


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(CISkipRule(), "ci_skip_rule")
