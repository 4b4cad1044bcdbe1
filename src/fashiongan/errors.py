"""One line per failure: the message a user reads, and the full traceback kept in a file.

``kedro run`` and the ``fashiongan`` commands print :func:`one_line` of an error and say where
:func:`write_traceback` put the rest, so a terminal never shows a 200-line traceback for a
corrupt file while a developer still has every frame.
"""

from __future__ import annotations

import datetime
import re
import sys
import tempfile
import traceback
from pathlib import Path

#: Where ``kedro run`` keeps the traceback of its last failure (relative to the project root).
RUN_ERROR_LOG = Path("logs") / "kedro_run_error.log"

# A token that names a file: a path with a separator, or a name with a known data extension.
_DATA_SUFFIXES = {"safetensors", "gz", "npz", "npy", "parquet", "csv", "json", "yml", "yaml", "png"}
_DATA_SUFFIXES |= {"jpg", "faiss", "txt"}
_NAMES_A_FILE = re.compile(
    r"[\w.~-]*/[\w.@+-]+|\b[\w.-]+\.(?:safetensors|gz|npz|npy|parquet|csv|json|ya?ml|png|jpg)\b"
)


def causes(err: BaseException) -> list[BaseException]:
    """``err`` and what it was raised from, outermost first (explicit causes, then context)."""
    chain: list[BaseException] = []
    current: BaseException | None = err
    while current is not None and current not in chain:
        chain.append(current)
        implicit = None if current.__suppress_context__ else current.__context__
        current = current.__cause__ or implicit
    return chain


def flatten(text: str) -> str:
    """Several lines (Kedro wraps a loader's error on a new line) as one."""
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def one_line(err: BaseException) -> str:
    """The message to print for ``err``: the innermost one that names a file, else the outermost.

    Kedro wraps a dataset's own error ("x.gz is truncated …") in its own ("fashion_mnist_raw:
    …", "Failed while loading data from dataset FashionMNISTRawDataset(…)"), and libraries'
    root causes ("Compressed file ended …") name no file; the dataset's message is the one a
    user can act on.
    """
    messages = [_message(e) for e in causes(err)]
    naming = [text for text in messages if _names_a_file(text)]
    return naming[-1] if naming else messages[0]


def _names_a_file(text: str) -> bool:
    """Whether ``text`` names a data or model file: one with a data extension, or a path that
    exists outside the installed packages (not a URL path such as ``/api/2.0/…``, nor "a/b")."""
    for match in _NAMES_A_FILE.finditer(text):
        token = match.group(0).rstrip(".:,")
        if "site-packages" in token:
            continue
        if Path(token).suffix.lower().lstrip(".") in _DATA_SUFFIXES or Path(token).exists():
            return True
    return False


def _message(err: BaseException) -> str:
    """The error's text; Python's own errors keep their type, since ``KeyError('x')`` reads
    just ``'x'``."""
    text = flatten(str(err))
    if type(err).__module__ == "builtins" or not text:
        return f"{type(err).__name__}: {text}" if text else type(err).__name__
    return text


def log_folder(project: Path | None = None) -> Path:
    """``logs/`` of the Kedro project (``project``, else the working directory when it is one),
    else the system's temporary folder: a command run elsewhere leaves no ``logs/`` behind."""
    root = Path.cwd() if project is None else Path(project)
    if (root / "conf").is_dir() or (root / "pyproject.toml").is_file():
        return root / RUN_ERROR_LOG.parent
    return Path(tempfile.gettempdir()) / "fashiongan"


def write_traceback(
    err: BaseException, folder: Path, name: str = RUN_ERROR_LOG.name
) -> Path | None:
    """Write the full traceback of ``err`` (and the command line) to ``folder/name``.

    The file is replaced on each failure: it holds the latest one, which is the one the printed
    line points at. A folder that cannot be written (read-only project) falls back to the
    system's temporary folder, so the traceback is never lost.

    Returns:
        The file written (relative to the working directory when below it), None if none could be.
    """
    stamp = datetime.datetime.now().isoformat(timespec="seconds")
    text = f"{stamp}  {' '.join(sys.argv)}\n\n" + "".join(
        traceback.format_exception(type(err), err, err.__traceback__)
    )
    for target in (Path(folder), Path(tempfile.gettempdir()) / "fashiongan"):
        try:
            target.mkdir(parents=True, exist_ok=True)
            (target / name).write_text(text, encoding="utf-8")
        except OSError:
            continue
        return _relative(target / name)
    return None


def with_traceback_note(message: str, log: Path | None) -> str:
    """``message`` plus where its full traceback is (nothing when it could not be written)."""
    return message if log is None else f"{message} (full traceback: {log})"


def _relative(path: Path) -> Path:
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path


def failure_line(err: BaseException, log_name: str) -> str:
    """One line for an unexpected error of a ``fashiongan`` command: its message and where its
    traceback went (``logs/`` of the project it runs in, else the temporary folder)."""
    return with_traceback_note(one_line(err), write_traceback(err, log_folder(), log_name))


def conf_problem(conf: Path, env: str | None, shown: str | None = None) -> str | None:
    """What is wrong with a Kedro conf folder and environment, as one line (None when nothing).

    Kedro reports a missing environment deep in MLflow's setup or as "configuration path either
    does not exist", and never says which environments there are.

    Args:
        conf: the conf folder, as the program will read it.
        env: the environment asked for (None: the default, which need not exist).
        shown: how to write ``conf`` in the message (the user's spelling).
    """
    shown = (shown or conf.as_posix()).rstrip("/")
    if not conf.is_dir():
        return (
            f"no configuration folder {shown}/: run from the project root, or pass "
            "--conf-source the project's conf/ folder"
        )
    if env and not (conf / env).is_dir():
        have = sorted(p.name for p in conf.iterdir() if p.is_dir() and p.name[0] not in "._")
        return (
            f"no configuration environment {env!r} in {shown}/ (have: {', '.join(have)}): "
            f"pass one of them to --env, or create {shown}/{env}/"
        )
    return None
