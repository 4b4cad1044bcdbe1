"""One tiny conditional training through the train_gan pipeline's nodes, run as a child process.

``python -m tests.training.repeat_run`` prints one JSON line: the run's final ``d_loss`` and
``g_loss`` and the SHA-256 of every trained weight (G, D, E and the text head). It keeps the
options of conf/base's ``conditional`` block (text code, attention head, AC-GAN heads, the
generator's average), shrunk to a few steps of a 4-channel model. A fresh interpreter's global
torch RNG starts random, so only what the run's seed fixes repeats from one process to the next.
"""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import torch

from fashiongan.config import TextEncoderParams, load_parameters, overridden
from fashiongan.pipelines.train_gan.nodes import encode_conditioning, train_conditional
from fashiongan.text.captions import ATTRIBUTES, stated_attributes
from tests.conftest import REPO_ROOT, draw_items

#: Captions that state a tone, a fit or a pattern, so the AC-GAN heads have targets.
TEXTS = ("a dark slim coat", "a light wide striped dress", "a plain pullover", "a light bag")
N_ITEMS = 32


def tiny_block() -> tuple[TextEncoderParams, object, tuple[str, ...]]:
    """conf/base's text encoder, training block (4 steps, 4 channels, one thread) and two
    sample captions."""
    block = load_parameters(REPO_ROOT / "conf")["conditional"]
    encoder = overridden(block.text_encoder, device="cpu")
    training = overridden(
        block.training,
        device="cpu", num_threads=1, epochs=2, batch_size=16, log_every=1, sample_columns=2,
        checkpoint_dir=None, model__g_channels=4, model__d_channels=4, model__text_channels=2,
        model__noise_channels=2, model__embed_dim=8, model__noise_dim=4, model__text_code_dim=4,
        embedding__width=4, embedding__dim=8,
    )  # fmt: skip
    assert encoder.head == "attention" and training.aux_weight > 0  # the default's options
    return encoder, training, tuple(block.sample_captions[:2])


def tiny_items() -> tuple[dict[str, torch.Tensor], pd.DataFrame, pd.DataFrame]:
    """Drawn items (4 classes), their captions with the stated attributes, composed queries."""
    labels = torch.arange(N_ITEMS) % 4
    images = torch.as_tensor(draw_items(labels.numpy())).float().div(127.5).sub(1).unsqueeze(1)
    texts = [TEXTS[i % len(TEXTS)] for i in range(N_ITEMS)]
    stated = stated_attributes(texts).clamp(min=0)  # an item has every attribute
    captions = pd.DataFrame({"split": "train", "index": range(N_ITEMS), "caption": texts})
    captions[list(ATTRIBUTES)] = stated.numpy()
    composed = pd.DataFrame(
        {
            "index": range(N_ITEMS),
            "reference_index": [(i + 1) % N_ITEMS for i in range(N_ITEMS)],
            "modification": ["darker" if i % 2 else "as a dress" for i in range(N_ITEMS)],
        }
    )
    return {"train_images": images, "train_labels": labels}, captions, composed


def weight_digest(*modules: torch.nn.Module) -> str:
    """SHA-256 over every tensor of the modules' state dicts, in order."""
    digest = hashlib.sha256()
    for module in modules:
        for name, tensor in module.state_dict().items():
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def main() -> None:
    encoder, training, sample_captions = tiny_block()
    model_input, captions, composed = tiny_items()
    conditioning = encode_conditioning(captions, composed, sample_captions, encoder)
    generator, discriminator, embedder, text_encoder, _, summary = train_conditional(
        model_input, conditioning, training, encoder, sample_captions, "default"
    )
    weights = weight_digest(generator, discriminator, embedder, text_encoder.head)
    losses = {key: summary[f"final_{key}"] for key in ("d_loss", "g_loss")}
    print(json.dumps({**losses, "weights": weights}))


if __name__ == "__main__":
    main()
