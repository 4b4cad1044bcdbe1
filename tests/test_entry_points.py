"""The installed commands start: the ``fashiongan`` console script and the search app's module.

The CLI tests call the click commands in-process, which would pass with a broken
``[project.scripts]`` entry or an import that only fails in a fresh interpreter. These run the
commands as a user does, in child processes, from outside the project folder.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.scale.conftest import child_env

BIN = Path(sys.executable).parent
CONSOLE_SCRIPT = BIN / "fashiongan"


def started(command: list[str], cwd: Path) -> str:
    """Run ``command``; its output, after checking it exited 0 without a traceback."""
    result = subprocess.run(
        command, cwd=cwd, env=child_env(), capture_output=True, text=True, timeout=120
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{command} exited {result.returncode}:\n{output[-3000:]}"
    assert "Traceback" not in output, output[-3000:]
    return output


def listed_commands(help_text: str) -> set[str]:
    """The sub-command names under ``Commands:`` in a click help page."""
    section = help_text.split("Commands:", 1)[-1]
    return set(re.findall(r"^  (\w[\w-]*)\s", section, flags=re.MULTILINE))


def test_the_console_script_is_installed():
    assert CONSOLE_SCRIPT.is_file(), f"{CONSOLE_SCRIPT} is missing: run `make install`"


@pytest.mark.parametrize(
    "command",
    [[str(CONSOLE_SCRIPT)], [sys.executable, "-m", "fashiongan"]],
    ids=["console-script", "python-m"],
)
def test_help_lists_generate_and_search(command, tmp_path):
    output = started([*command, "--help"], tmp_path)
    assert "Usage:" in output
    assert {"generate", "search"} <= listed_commands(output)


@pytest.mark.parametrize("subcommand", ["generate", "search"])
def test_each_subcommand_starts(subcommand, tmp_path):
    output = started([str(CONSOLE_SCRIPT), subcommand, "--help"], tmp_path)
    assert f"Usage: fashiongan {subcommand} [OPTIONS]" in output


def test_the_search_app_module_starts(tmp_path):
    output = started([sys.executable, "-m", "fashiongan.search.app", "--help"], tmp_path)
    assert "Usage: python -m fashiongan.search.app [OPTIONS]" in output
    assert "Serve the FashionGAN search app" in output
    for option in ("--host", "--port", "--conf-source", "--env"):
        assert option in output
