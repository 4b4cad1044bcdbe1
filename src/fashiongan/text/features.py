"""Text features of the catalog items: attributes and captions, then their embeddings.

The ``captions`` pipeline calls :func:`caption_dataset`; :func:`embed_captions` embeds a caption
table once per distinct caption (for scripts and notebooks).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pandas as pd
import torch

from fashiongan.attributes import DEFAULT_MASK_THRESHOLD, assign, fit_thresholds
from fashiongan.compute import torch_threads
from fashiongan.config import CaptionAttributes, TextEncoderParams
from fashiongan.text.captions import build_captions

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
CAPTION_COLUMNS = ("split", "index", "label", "tone", "fit", "pattern", "caption")


def caption_dataset(
    model_input: dict[str, torch.Tensor],
    attributes: CaptionAttributes,
    seed: int,
    n_classes: int = 10,
    mask_threshold: float = DEFAULT_MASK_THRESHOLD,
) -> dict[str, Any]:
    """Attributes and captions of every split, with cut points fitted on the training split only.

    Args:
        model_input: ``{split}_images`` (N, 1, H, W) in [-1, 1] and ``{split}_labels`` for
            ``train`` (required), ``validation`` and ``test`` (used when present).
        attributes: ``per_item`` (captions per image), ``drop_prob`` (chance to leave an
            attribute out) and ``phrasings_per_key`` (wordings per caption meaning, see
            :func:`~fashiongan.text.captions.build_captions`).
        seed: captions are deterministic for it (each split gets its own stream).
        n_classes, mask_threshold: Fashion-MNIST's classes and the garment mask's cut-off
            (:func:`~fashiongan.attributes.fit_thresholds`).

    Returns:
        ``attributes``: a ``dict[str, Tensor]`` for ``TensorDictDataset`` with ``{split}_tone``,
        ``{split}_fit``, ``{split}_pattern`` (N,) int64 and the cut points of
        :func:`~fashiongan.attributes.fit_thresholds` (``tone_cuts``, ``fit_cuts``,
        ``pattern_cuts``, ``mask_threshold``), so ``assign(generated, labels, attributes)``
        works on the loaded file; ``captions``: a DataFrame with columns ``split``, ``index``
        (row in that split), ``label``, ``tone``, ``fit``, ``pattern``, ``caption``
        (``per_item`` rows per image).
    """
    if "train_images" not in model_input or "train_labels" not in model_input:
        raise KeyError("model_input needs train_images and train_labels to fit the cut points")
    thresholds = fit_thresholds(
        model_input["train_images"],
        model_input["train_labels"],
        n_classes=n_classes,
        mask_threshold=mask_threshold,
    )
    tensors: dict[str, torch.Tensor] = dict(thresholds)
    frames = []
    for offset, split in enumerate(SPLITS):
        if f"{split}_images" not in model_input:
            continue
        labels = model_input[f"{split}_labels"].long().cpu()
        measured = assign(model_input[f"{split}_images"], labels, thresholds)
        for name, values in measured.items():
            tensors[f"{split}_{name}"] = values
        per_item = attributes.per_item
        captions = build_captions(
            labels,
            measured,
            seed=seed * len(SPLITS) + offset,
            per_item=per_item,
            drop_prob=attributes.drop_prob,
            phrasings_per_key=attributes.phrasings_per_key,
        )
        frame = pd.DataFrame(
            {
                "split": split,
                "index": torch.arange(len(labels)).repeat_interleave(per_item).numpy(),
                "label": labels.repeat_interleave(per_item).numpy(),
                **{
                    name: measured[name].repeat_interleave(per_item).numpy()
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


def embed_captions(
    captions_df: pd.DataFrame, encoder: TextEncoderParams, num_threads: int | None = None
) -> dict[str, torch.Tensor]:
    """Embed each distinct caption once.

    Args:
        captions_df: the ``captions`` table of :func:`caption_dataset` (a ``caption`` column).
        encoder: a ``text_encoder`` parameter block (the model and its ``batch_size``).
        num_threads: torch CPU threads while encoding, restored after (1 is fastest on a busy
            shared CPU); None keeps the current count.

    Returns:
        ``embeddings`` (U, D) float32, one row per distinct caption in first-occurrence order,
        and ``caption_index`` (N,) int64: row ``i`` of the table has embedding
        ``embeddings[caption_index[i]]``.
    """
    from fashiongan.text.encoder import TextEncoder  # transformers loads only when needed

    if "caption" not in captions_df.columns:
        raise KeyError(f"captions_df needs a 'caption' column, has {list(captions_df.columns)}")
    with torch_threads(num_threads):
        text_encoder = TextEncoder.from_params(encoder)
        started = time.perf_counter()
        unique, embeddings, index = text_encoder.encode_unique(
            captions_df["caption"].astype(str).tolist(), batch_size=encoder.batch_size
        )
        seconds = time.perf_counter() - started
    log.info(
        "embedded %d distinct captions of %d rows (dim %d) in %.1f s (%.0f captions/s)",
        len(unique),
        len(index),
        text_encoder.dim,
        seconds,
        len(unique) / max(seconds, 1e-9),
    )
    return {"embeddings": embeddings.float().contiguous(), "caption_index": index}
