"""A DVC remote round trip on the tiny project: repro, push, lose everything, pull, repro = no-op.

The remote is a local directory; an S3 or GCS remote differs only in its URL and credentials
(``dvc remote add -d storage s3://bucket/path`` with ``pip install 'dvc[s3]'``; see README).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.scale.conftest import child_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]
BIN = Path(sys.executable).parent  # the venv's dvc and kedro
OUTS = [
    "data/02_intermediate/fashion_mnist.safetensors",
    "data/03_primary/fashion_mnist_split.safetensors",
    "data/05_model_input/fashion_mnist.safetensors",
]
STAGES = {
    "stages": {
        "data": {  # the project's `data` stage, with the raw files tracked by `dvc add`
            "cmd": "kedro run --pipelines=data_processing",
            "deps": ["data/01_raw/fashion-mnist"],
            "params": [{"conf/base/parameters_data_processing.yml": ["fashion_mnist"]}],
            "outs": OUTS,
            "metrics": [{"data/08_reporting/fashion_mnist_summary.json": {"cache": False}}],
        }
    }
}


def sh(*command: str, cwd: Path) -> str:
    env = child_env(DVC_NO_ANALYTICS="1", PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, (
        f"{command} exited {result.returncode}:\n{result.stdout}{result.stderr}"
    )
    return result.stdout + result.stderr


def digests(project: Path, paths: list[str]) -> dict[str, str]:
    files = [f for p in paths for f in sorted((project / p).rglob("*")) or [project / p]]
    return {
        str(f.relative_to(project)): hashlib.sha256(f.read_bytes()).hexdigest()
        for f in files
        if f.is_file()
    }


def test_push_wipe_pull_then_repro_has_nothing_to_do(kedro_project: Path, tmp_path: Path):
    project, remote = kedro_project, tmp_path / "remote"
    (project / "dvc.yaml").write_text(yaml.safe_dump(STAGES, sort_keys=False))
    sh("git", "init", "-q", cwd=project)
    sh("dvc", "init", "-q", cwd=project)
    sh("dvc", "config", "core.analytics", "false", cwd=project)
    sh("dvc", "add", "-q", "data/01_raw/fashion-mnist", cwd=project)
    assert "Running stage 'data'" in sh("dvc", "repro", cwd=project)
    sh("dvc", "remote", "add", "-d", "local", str(remote), cwd=project)
    sh("git", "add", "-A", cwd=project)
    sh("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "tiny", cwd=project)

    tracked = ["data/01_raw/fashion-mnist", *OUTS]
    before = digests(project, tracked)
    assert len(before) == 7  # 4 raw idx files and 3 stage outputs
    sh("dvc", "push", cwd=project)
    assert any(p.is_file() for p in remote.rglob("*")), "the remote holds the cache files"

    shutil.rmtree(project / ".dvc" / "cache")  # a fresh clone: no cache, no data
    for path in tracked:
        target = project / path
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    sh("dvc", "pull", cwd=project)
    assert digests(project, tracked) == before

    output = sh("dvc", "repro", cwd=project)
    assert "Running stage" not in output and "up to date" in output, output
    assert "up to date" in sh("dvc", "status", cwd=project)
