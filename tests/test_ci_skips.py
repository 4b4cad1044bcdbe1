"""The CI skip rule (tests/ci_skips.py) on small generated test files, run in-process."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

SKIPS_IN_A_TEST = """
import pytest

def test_browser():
    pytest.skip("browser test needs Chromium on PATH")

def test_mystery():
    pytest.skip("some reason no component explains")

def test_passes():
    assert True
"""
SKIPS_AT_IMPORT = """
import pytest
pytest.skip("PostgreSQL server binaries not found", allow_module_level=True)

def test_never_collected():
    assert False
"""


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch):
    """Set whether this is CI and whether `make test-deps` could install with apt as root."""

    def configure(ci: bool, root: bool) -> None:
        monkeypatch.setenv("CI", "true") if ci else monkeypatch.delenv("CI", raising=False)
        monkeypatch.setattr(os, "geteuid", lambda: 0 if root else 1000)
        monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")

    return configure


def run(pytester: pytest.Pytester, source: str) -> pytest.RunResult:
    pytester.makepyfile(test_sample=source)
    return pytester.runpytest_inprocess("-p", "tests.ci_skips", "-rA")


def test_without_ci_a_skip_stays_a_skip(pytester, machine):
    machine(ci=False, root=True)
    result = run(pytester, SKIPS_IN_A_TEST)
    result.assert_outcomes(passed=1, skipped=2)
    assert result.ret == 0


def test_under_ci_a_skip_of_what_can_be_had_fails_naming_it(pytester, machine):
    machine(ci=True, root=True)
    result = run(pytester, SKIPS_IN_A_TEST)
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "FAILED test_sample.py::test_browser - *Chromium can be had here*",
            "FAILED test_sample.py::test_mystery - *no known component can be had here*",
        ]
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_under_ci_a_module_skipped_at_import_is_one_failure(pytester, machine):
    machine(ci=True, root=True)
    result = run(pytester, SKIPS_AT_IMPORT)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["FAILED test_sample.py::skipped - *PostgreSQL can be had here*"])


def test_under_ci_a_component_that_cannot_be_had_is_a_skip_with_its_reason(pytester, machine):
    machine(ci=True, root=False)
    pytester.makepyfile(test_other="def test_runs():\n    pass\n")
    result = run(pytester, SKIPS_AT_IMPORT)
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*components not available here (skips CI accepts)*",
            "PostgreSQL: not root: `make test-deps` cannot apt-get install it (1 skipped: *)",
        ]
    )
    assert result.ret == 0


def test_under_ci_real_data_is_never_excused(pytester, machine):
    machine(ci=True, root=False)
    pytester.makepyfile(
        test_sample="import pytest\n\ndef test_data():\n"
        "    pytest.skip('the real Fashion-MNIST files are not in data/01_raw')\n"
    )
    result = pytester.runpytest_inprocess("-p", "tests.ci_skips")
    result.assert_outcomes(failed=1)


def test_under_ci_and_xdist_a_skip_in_a_worker_fails_the_run(pytester, monkeypatch):
    """The suite runs under pytest-xdist (`-n 2`): the rule works in the worker processes, which
    inherit the environment (no monkeypatched functions), so only skips no machine excuses here."""
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[1]))  # tests.ci_skips
    pytester.makepyfile(
        test_sample="import pytest\n\n"
        "def test_mystery():\n    pytest.skip('some reason no component explains')\n\n"
        "def test_data():\n    pytest.skip('the real Fashion-MNIST files are not in data/01_raw')\n\n"
        "def test_passes():\n    pass\n",
        test_at_import="import pytest\n"
        "pytest.skip('the real Fashion-MNIST files are missing', allow_module_level=True)\n",
    )
    result = pytester.runpytest_subprocess("-p", "tests.ci_skips", "-n", "2", "-rA")
    result.assert_outcomes(passed=1, failed=3)
    for line in (  # in the order the workers finish
        "created: 2/2 workers",
        "FAILED test_at_import.py::skipped - *real Fashion-MNIST can be had here*",
        "FAILED test_sample.py::test_data - *real Fashion-MNIST can be had here*",
        "FAILED test_sample.py::test_mystery - *no known component can be had here*",
    ):
        result.stdout.fnmatch_lines([line])
    assert result.ret == pytest.ExitCode.TESTS_FAILED
