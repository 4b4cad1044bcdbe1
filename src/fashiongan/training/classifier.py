"""Train the product classifier (image CNN + title LSTM) or one of its ablations.

All three variants share the images, titles, splits, optimiser (Adam), epochs and seed, so the
comparison isolates what each modality adds; ``fit_epochs`` brings resume, checkpoints, the NaN
guard and MLflow metrics.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fashiongan.compute import batched
from fashiongan.config import ClassifierTraining
from fashiongan.models.classifier import ClassifierConfig, ProductClassifier
from fashiongan.training.epochs import fit_epochs
from fashiongan.training.runtime import pick_device, seed_everything


def split_inputs(
    model_input: dict[str, torch.Tensor], text_input: dict[str, torch.Tensor], split: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(images, tokens, lengths, labels)`` of one split, after checking titles match images."""
    labels = model_input[f"{split}_labels"]
    if not torch.equal(labels, text_input[f"{split}_labels"]):
        raise ValueError(
            f"the {split} titles do not belong to the {split} images (labels differ): "
            "rerun the classifier pipeline from make_product_titles"
        )
    return (
        model_input[f"{split}_images"],
        text_input[f"{split}_tokens"],
        text_input[f"{split}_lengths"],
        labels,
    )


def classifier_logits(
    model: ProductClassifier,
    images: torch.Tensor,
    tokens: torch.Tensor,
    lengths: torch.Tensor,
    batch_size: int = 1000,
) -> torch.Tensor:
    """(N, n_classes) eval-mode logits on the CPU, in batches."""
    model.eval()
    return batched(model, images, tokens, lengths, batch_size=batch_size)


def train_classifier(
    model_input: dict[str, torch.Tensor],
    text_input: dict[str, torch.Tensor],
    vocab_size: int,
    params: ClassifierTraining,
    modality: str,
) -> tuple[ProductClassifier, list[dict[str, float]]]:
    """Train one variant with Adam and categorical cross-entropy.

    Args:
        model_input: images and labels (``fashion_mnist_model_input``).
        text_input: encoded titles (``<split>_tokens``, ``<split>_lengths``, ``<split>_labels``).
        vocab_size: the title vocabulary's size (the embedding table's rows).
        params: ``classifier.training``.
        modality: ``multimodal``, ``image`` or ``text``; part of the checkpoint fingerprint,
            so each variant resumes only its own run.

    Returns:
        The model (CPU, eval mode) and its per-epoch history (train/val loss and accuracy).
    """
    rng = seed_everything(params.seed)
    device = pick_device(params.device)
    config = ClassifierConfig(modality=modality, vocab_size=vocab_size, **params.model.model_dump())
    model = ProductClassifier(config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=params.lr)
    train = [t.to(device) for t in split_inputs(model_input, text_input, "train")]
    val = [t.to(device) for t in split_inputs(model_input, text_input, "validation")]

    def batch_step(indices: torch.Tensor) -> dict[str, float]:
        images, tokens, lengths, labels = (t[indices.to(device)] for t in train)
        logits = model(images, tokens, lengths)  # (B, n_classes)
        loss = F.cross_entropy(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"loss": loss.item(), "accuracy": (logits.argmax(1) == labels).float().mean().item()}

    def validate() -> dict[str, float]:
        logits, labels = classifier_logits(model, *val[:3]), val[3].cpu()
        return {
            "loss": F.cross_entropy(logits, labels).item(),
            "accuracy": (logits.argmax(1) == labels).float().mean().item(),
        }

    history = fit_epochs(
        {"model": model},
        {"model": optimizer},
        rng,
        n_train=len(train[3]),
        batch_step=batch_step,
        validate=validate,
        params=params,
        name=f"classifier_{modality}",
        fingerprint_extra={"modality": modality},  # one checkpoint folder per variant
    )
    return model.cpu().eval(), history
