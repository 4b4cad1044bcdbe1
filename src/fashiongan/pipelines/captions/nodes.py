"""Nodes of ``captions``: measure and describe every item, then pair items into composed queries.

The caption grammar and the pixel measures live in libraries (``fashiongan.text.captions``,
``fashiongan.attributes``); these nodes pick inputs and shape tables for the catalog.
"""

from __future__ import annotations

import random

import pandas as pd
import torch

from fashiongan.config import Captions, Composed
from fashiongan.text.captions import modification_text
from fashiongan.text.features import caption_dataset

#: The columns a composed query compares, in the order of a caption table's.
_COMPARED = ("label", "tone", "fit", "pattern")


def describe_items(
    model_input: dict[str, torch.Tensor], captions: Captions
) -> tuple[dict[str, torch.Tensor], pd.DataFrame]:
    """Tone / fit / pattern of every item and a shopper-style caption for it (all splits).

    Returns:
        Attribute tensors with the per-class cut points fitted on the training split, and the
        caption table (``split, index, label, tone, fit, pattern, caption``).
    """
    described = caption_dataset(model_input, captions.attributes, captions.seed)
    return described["attributes"], described["captions"]


def pair_composed_queries(captions: pd.DataFrame, composed: Composed) -> pd.DataFrame:
    """A reference item and a modification text for every training item (the target).

    Half the references (``same_class_prob``) share the target's class, so the texts cover both
    "the same but darker" and "as a dress instead". A modification text depends only on what
    changes, so each change gets ``variants`` phrasings: BERT then encodes a few thousand texts
    instead of one per item.

    Returns:
        One row per training item: ``index``, ``reference_index``, ``modification``.
    """
    train = captions[captions["split"] == "train"].drop_duplicates("index").sort_values("index")
    values = train[list(_COMPARED)].to_numpy()
    positions = train["index"].to_numpy()
    rng = random.Random(composed.seed)
    by_label = {label: positions[values[:, 0] == label] for label in set(values[:, 0].tolist())}
    phrasings: dict[tuple, str] = {}
    rows = []
    for row, (index, item) in enumerate(zip(positions, values, strict=True)):
        pool = by_label[item[0]] if rng.random() < composed.same_class_prob else positions
        reference = int(pool[rng.randrange(len(pool))])
        if reference == index:
            reference = int(positions[(row + 1) % len(positions)])
        ref_item = values[reference]
        change = (
            int(item[1] - ref_item[1]),
            int(item[2] - ref_item[2]),
            int(item[3]) if item[3] != ref_item[3] else None,
            int(item[0]) if item[0] != ref_item[0] else None,
            rng.randrange(composed.variants),
        )
        if change not in phrasings:
            phrasings[change] = modification_text(
                dict(zip(_COMPARED, map(int, ref_item), strict=True)),
                dict(zip(_COMPARED, map(int, item), strict=True)),
                random.Random(f"{composed.seed}-{change}"),
            )
        rows.append((int(index), reference, phrasings[change]))
    return pd.DataFrame(rows, columns=["index", "reference_index", "modification"])
