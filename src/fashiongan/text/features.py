"""Kedro-node functions of the text features: attributes and captions, then their embeddings.

Wiring sketch (the conditional pipeline owns the catalog entries)::

    Node(func=caption_dataset,
         inputs=["fashion_mnist_model_input", "params:captions.attributes", "params:captions.seed"],
         outputs={"attributes": "caption_attributes", "captions": "captions_table"})
    Node(func=embed_captions, inputs=["captions_table", "params:captions.encoder"],
         outputs="caption_embeddings")
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pandas as pd
import torch

from fashiongan.attributes import DEFAULT_MASK_THRESHOLD, assign, fit_thresholds
from fashiongan.text.captions import build_captions

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
CAPTION_COLUMNS = ("split", "index", "label", "tone", "fit", "pattern", "caption")
_ATTRIBUTE_DEFAULTS: dict[str, Any] = {
    "n_classes": 10,
    "mask_threshold": DEFAULT_MASK_THRESHOLD,
    "per_item": 1,
    "drop_prob": 0.25,
    "phrasings_per_key": 16,
}
_ENCODER_KEYS = {
    "model_name_or_path",
    "pooling",
    "normalize",
    "max_length",
    "device",
    "local_files_only",
    "batch_size",
    "num_threads",
}


def _settings(given: dict[str, Any] | None, defaults: dict[str, Any], what: str) -> dict[str, Any]:
    given = dict(given or {})
    unknown = set(given) - set(defaults)
    if unknown:
        raise ValueError(f"{what}: unknown keys {sorted(unknown)}; allowed: {sorted(defaults)}")
    return {**defaults, **given}


def caption_dataset(
    model_input: dict[str, torch.Tensor], attribute_params: dict[str, Any] | None, seed: int
) -> dict[str, Any]:
    """Attributes and captions of every split, with cut points fitted on the training split only.

    Args:
        model_input: ``{split}_images`` (N, 1, H, W) in [-1, 1] and ``{split}_labels`` for
            ``train`` (required), ``validation`` and ``test`` (used when present).
        attribute_params: optional ``n_classes`` (10), ``mask_threshold`` (0.05), ``per_item``
            (captions per image, 1), ``drop_prob`` (chance to leave an attribute out, 0.25) and
            ``phrasings_per_key`` (wordings per caption meaning, 16; null = a fresh wording
            per caption, see :func:`~fashiongan.text.captions.build_captions`).
        seed: captions are deterministic for it (each split gets its own stream).

    Returns:
        ``attributes``: a ``dict[str, Tensor]`` for ``TensorDictDataset`` with ``{split}_tone``,
        ``{split}_fit``, ``{split}_pattern`` (N,) int64 and the cut points of
        :func:`~fashiongan.attributes.fit_thresholds` (``tone_cuts``, ``fit_cuts``,
        ``pattern_cuts``, ``mask_threshold``), so ``assign(generated, labels, attributes)``
        works on the loaded file; ``captions``: a DataFrame with columns ``split``, ``index``
        (row in that split), ``label``, ``tone``, ``fit``, ``pattern``, ``caption``
        (``per_item`` rows per image).
    """
    settings = _settings(attribute_params, _ATTRIBUTE_DEFAULTS, "attribute_params")
    if "train_images" not in model_input or "train_labels" not in model_input:
        raise KeyError("model_input needs train_images and train_labels to fit the cut points")
    thresholds = fit_thresholds(
        model_input["train_images"],
        model_input["train_labels"],
        n_classes=int(settings["n_classes"]),
        mask_threshold=float(settings["mask_threshold"]),
    )
    tensors: dict[str, torch.Tensor] = dict(thresholds)
    frames = []
    for offset, split in enumerate(SPLITS):
        if f"{split}_images" not in model_input:
            continue
        labels = model_input[f"{split}_labels"].long().cpu()
        attributes = assign(model_input[f"{split}_images"], labels, thresholds)
        for name, values in attributes.items():
            tensors[f"{split}_{name}"] = values
        per_item = int(settings["per_item"])
        captions = build_captions(
            labels,
            attributes,
            seed=seed * len(SPLITS) + offset,
            per_item=per_item,
            drop_prob=float(settings["drop_prob"]),
            phrasings_per_key=settings["phrasings_per_key"],
        )
        frame = pd.DataFrame(
            {
                "split": split,
                "index": torch.arange(len(labels)).repeat_interleave(per_item).numpy(),
                "label": labels.repeat_interleave(per_item).numpy(),
                **{
                    name: attributes[name].repeat_interleave(per_item).numpy()
                    for name in ("tone", "fit", "pattern")
                },
                "caption": captions,
            },
            columns=list(CAPTION_COLUMNS),
        )
        frames.append(frame)
        log.info("%s: %d captions, %d distinct", split, len(frame), frame["caption"].nunique())
    table = pd.concat(frames, ignore_index=True)
    return {"attributes": tensors, "captions": table}


def embed_captions(captions_df: pd.DataFrame, encoder_params: dict[str, Any] | None) -> dict:
    """Embed each distinct caption once.

    Args:
        captions_df: the ``captions`` table of :func:`caption_dataset` (a ``caption`` column).
        encoder_params: :class:`~fashiongan.text.encoder.TextEncoder` arguments
            (``model_name_or_path``, ``pooling``, ``normalize``, ``max_length``, ``device``,
            ``local_files_only``), ``batch_size`` and ``num_threads`` (torch CPU threads while
            encoding, restored after; 1 is fastest on a busy shared CPU); all optional.

    Returns:
        ``embeddings`` (U, D) float32, one row per distinct caption in first-occurrence order,
        and ``caption_index`` (N,) int64: row ``i`` of the table has embedding
        ``embeddings[caption_index[i]]``.
    """
    from fashiongan.text.encoder import TextEncoder  # transformers loads only when needed

    params = dict(encoder_params or {})
    unknown = set(params) - _ENCODER_KEYS
    if unknown:
        raise ValueError(
            f"encoder_params: unknown keys {sorted(unknown)}; allowed: {sorted(_ENCODER_KEYS)}"
        )
    if "caption" not in captions_df.columns:
        raise KeyError(f"captions_df needs a 'caption' column, has {list(captions_df.columns)}")
    batch_size = int(params.pop("batch_size", 256))
    num_threads = params.pop("num_threads", None)
    threads_before = torch.get_num_threads()
    if num_threads:
        torch.set_num_threads(int(num_threads))
    try:
        encoder = TextEncoder(**params)
        started = time.perf_counter()
        unique, embeddings, index = encoder.encode_unique(
            captions_df["caption"].astype(str).tolist(), batch_size=batch_size
        )
        seconds = time.perf_counter() - started
    finally:
        torch.set_num_threads(threads_before)
    log.info(
        "embedded %d distinct captions of %d rows (dim %d) in %.1f s (%.0f captions/s)",
        len(unique),
        len(index),
        encoder.dim,
        seconds,
        len(unique) / max(seconds, 1e-9),
    )
    return {"embeddings": embeddings.float().contiguous(), "caption_index": index}
