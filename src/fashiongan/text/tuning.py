"""The trainable part of a BERT-style model: its last ``k`` transformer layers, run alone.

Fine-tuning never runs the whole BERT per step. The frozen layers run once per text (their
output is cached by :meth:`~fashiongan.text.encoder.TextEncoder.hidden_below_top`); each step
runs only the top layers on that cache (:func:`run_top_layers`), with the attention mask built
by transformers' public mask factory, the one ``BertModel`` itself uses for its layers. The other
trainable part, the attention head over the last token states, is :mod:`fashiongan.text.head`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def transformer_layers(model: nn.Module) -> nn.ModuleList | None:
    """The model's ``encoder.layer`` list (BERT, RoBERTa, MiniLM…), None for other models."""
    return getattr(getattr(model, "encoder", None), "layer", None)


def unfreeze_top_layers(model: nn.Module, k: int, name: str) -> None:
    """Freeze ``model``, then let its last ``k`` transformer layers train.

    Raises:
        ValueError: ``k`` is out of range, or the model (``name``) has no layers to unfreeze.
    """
    layers = transformer_layers(model)
    if k and (layers is None or getattr(model.config, "is_decoder", False)):
        raise ValueError(
            f"{name}: trainable_top_layers needs a BERT-style encoder with "
            "encoder.layer; use 0 (frozen) for this model"
        )
    n_layers = len(layers) if layers is not None else 0
    if not 0 <= k <= n_layers:
        raise ValueError(f"trainable_top_layers must be in [0, {n_layers}], got {k}")
    model.requires_grad_(False)
    for layer in list(layers)[n_layers - k :] if k else []:
        layer.requires_grad_(True)


def top_layers(model: nn.Module, k: int) -> nn.ModuleList:
    """The last ``k`` transformer layers (empty for 0): the model's own, not copies."""
    layers = list(transformer_layers(model)) if k else []
    return nn.ModuleList(layers[len(layers) - k :])


def layer_attention_mask(config: Any, mask: torch.Tensor, hidden: torch.Tensor) -> Any:
    """The mask a BERT layer takes for (N, T) padding ``mask`` and (N, T, D) ``hidden``, in the
    form the model's attention implementation wants (None when nothing is padded)."""
    from transformers.masking_utils import create_bidirectional_mask

    return create_bidirectional_mask(config=config, inputs_embeds=hidden, attention_mask=mask)


def run_top_layers(
    layers: nn.ModuleList, config: Any, hidden: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """(N, T, D) states below the top layers and their (N, T) mask → the last (N, T, D) states."""
    if len(layers) == 0:
        return hidden
    layer_mask = layer_attention_mask(config, mask, hidden)
    for layer in layers:
        out = layer(hidden, attention_mask=layer_mask)
        hidden = out[0] if isinstance(out, tuple) else out  # some BERT-style layers return tuples
    return hidden
