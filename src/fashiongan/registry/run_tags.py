"""What an MLflow run records about itself: its name, the command, the code and the data.

Pure helpers for :class:`fashiongan.hooks.RunNamingHook`; nothing here talks to MLflow.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

#: The Kedro environments that are the project's normal runs (no suffix on the run name).
PLAIN_ENVS = ("base", "local", None)
#: ``mlflow.experimentKind`` for classic training: the UI opens on the runs table.
EXPERIMENT_KIND = "custom_model_development"
#: Environment variables DVC 3 sets for a stage's command (``dvc repro``, ``dvc exp run``).
DVC_VARIABLES = {
    "DVC_STAGE": "fashiongan.dvc.stage",
    "DVC_EXP_NAME": "fashiongan.dvc.experiment",
    "DVC_EXP_BASELINE_REV": "fashiongan.dvc.baseline_rev",
}
#: Where file digests are cached (by path, size and mtime): a 90 MB model is hashed once.
DIGEST_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fashiongan"


def run_name(
    pipelines: Iterable[str],
    namespaces: Iterable[str] | None,
    variant: str,
    env: str | None,
    experiment: str | None = None,
) -> str:
    """``<pipeline>[.<namespace>][.<run_name>][@<env>][ (dvc exp <name>)]``.

    The variant ``default`` is left out (``train_gan.conditional``); an environment other than
    base/local is appended unless the variant already says it (``train_gan.conditional.smoke``
    is the smoke environment's own variant, ``train_gan.conditional@smoke`` any other), so a
    smoke run never looks like a full one. A DVC experiment (``dvc exp run -n epochs2 -S …``)
    changes parameters without a variant name, so its name is added: two experiments' runs
    never share a name.
    """
    name = "+".join(pipelines) or "__default__"
    if namespaces:
        name += "." + "+".join(namespaces)
    if variant and variant != "default":
        name += f".{variant}"
    name = name if env in PLAIN_ENVS or env == variant else f"{name}@{env}"
    return f"{name} (dvc exp {experiment})" if experiment else name


def variant_of(run_params: Mapping[str, Any], configured: str) -> str:
    """The variant a run trains: ``--params run_name=…`` if given, else the configured one."""
    return str((run_params.get("runtime_params") or {}).get("run_name", configured))


def variant_tags(run_params: Mapping[str, Any], variant: str) -> dict[str, str]:
    """The tags that make two runs the same training: pipeline, namespace, variant, env."""
    return {
        "fashiongan.pipeline": "+".join(run_params.get("pipeline_names") or ["__default__"]),
        "fashiongan.namespace": ",".join(run_params.get("namespaces") or []),
        "fashiongan.run_name": variant,
        "fashiongan.kedro_env": str(run_params.get("env") or "local"),
    }


def command_line(argv: list[str], run_params: Mapping[str, Any]) -> str:
    """The command as typed (``kedro run --pipelines=… --namespaces=… --params=…``), quoted.

    Called from the ``kedro``/``fashiongan`` scripts, that is ``sys.argv``; from Python (a
    notebook, a test) the equivalent command is rebuilt from the session's run parameters.
    """
    script = Path(argv[0]) if argv else Path()
    # `kedro …`, or `python -m kedro …` (Kedro sets argv[0] to "python -m kedro")
    program = script.parent.name if script.name == "__main__.py" else script.name
    program = program.removeprefix("python -m ")
    if program in ("kedro", "fashiongan"):
        return shlex.join([program, *argv[1:]])
    return equivalent_command(run_params)


def equivalent_command(run_params: Mapping[str, Any]) -> str:
    """``kedro run`` with every option the session was given, in Kedro's own spelling."""
    words = ["kedro", "run"]
    for option, key in (("pipelines", "pipeline_names"), ("namespaces", "namespaces"),
                        ("tags", "tags"), ("nodes", "node_names"),
                        ("from-nodes", "from_nodes"), ("to-nodes", "to_nodes"),
                        ("from-inputs", "from_inputs"), ("to-outputs", "to_outputs")):  # fmt: skip
        if values := run_params.get(key):
            words.append(f"--{option}={','.join(values)}")
    if run_params.get("env"):
        words.append(f"--env={run_params['env']}")
    if params := run_params.get("runtime_params"):
        words.append(f"--params={params_text(params)}")
    return shlex.join(words)


def params_text(params: Mapping[str, Any]) -> str:
    """``--params``' own spelling of runtime parameters: ``a.b=1,run_name=tuned``."""
    return ",".join(f"{key}={value}" for key, value in _flat(params))


def _flat(params: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in params.items():
        if isinstance(value, Mapping):
            out += _flat(value, f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", value))
    return out


def git_state(project: Path) -> dict[str, str]:
    """The checked-out commit and whether tracked files differ from it (``true``/``false``)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(project), *args],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return {"fashiongan.git.commit": "unknown"}
    return {
        "fashiongan.git.commit": commit,
        "fashiongan.git.dirty": str(dirty).lower(),
        "mlflow.source.git.commit": commit,
    }


def dvc_tags(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The DVC stage and experiment that launched this process, if DVC did."""
    return {tag: environ[var] for var, tag in DVC_VARIABLES.items() if environ.get(var)}


def dataset_path(dataset: Any) -> Path | None:
    """The file or folder a catalog dataset reads (None for memory or parameters)."""
    for attribute in ("path", "_filepath", "_path"):
        value = getattr(dataset, attribute, None)
        if isinstance(value, str | os.PathLike) and str(value):
            return Path(str(value))
    return None


def file_sha256(path: Path, cache: dict[str, Any]) -> str:
    """SHA-256 of a file's bytes, or of a folder's files (names and digests, sorted).

    ``cache`` maps the absolute path to ``[size, mtime_ns, digest]``; an unchanged file is
    not read again.
    """
    if path.is_dir():
        digest = hashlib.sha256()
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(
                f"{file.relative_to(path).as_posix()}:{file_sha256(file, cache)};".encode()
            )
        return digest.hexdigest()
    stat, key = path.stat(), str(path.resolve())
    if (known := cache.get(key)) and known[:2] == [stat.st_size, stat.st_mtime_ns]:
        return known[2]
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    cache[key] = [stat.st_size, stat.st_mtime_ns, digest.hexdigest()]
    return cache[key][2]


def data_tags(paths: Mapping[str, Path], project: Path) -> dict[str, str]:
    """``fashiongan.sha256.<dataset>`` → ``<sha256>  <path>`` (``sha256sum``'s format) for each
    file or folder that exists; the digests are cached across runs in :data:`DIGEST_CACHE`."""
    cache_file = DIGEST_CACHE / "sha256.json"
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        cache = {}
    tags = {}
    for name, path in sorted(paths.items()):
        full = path if path.is_absolute() else project / path
        if full.exists():
            shown = full.relative_to(project) if full.is_relative_to(project) else full
            tags[f"fashiongan.sha256.{name}"] = f"{file_sha256(full, cache)}  {shown.as_posix()}"
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache))
        tmp.replace(cache_file)
    except OSError:
        pass  # a cache only: the digests are right either way
    return tags


def argv() -> list[str]:
    return list(sys.argv)
