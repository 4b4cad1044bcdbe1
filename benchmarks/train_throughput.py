"""Training throughput (images/s) of the baseline and conditional GANs, beside plain reference steps.

For each model, two loops over the same networks and batch size, timed side by side in one run:

* ``project``: the project's training step (``fashiongan.training``): tensors already in memory
  and indexed per batch, text features computed once per distinct caption (cached), one
  discriminator pass over [real | mismatched | fake], the fake reused by the G step, the embedder's
  four inputs in one batch.
* ``reference``: the plain way to write the same step: a ``DataLoader`` over a ``TensorDataset``
  (per-item collation), BERT run on the batch's captions every step (conditional), separate
  discriminator and embedder calls, a fresh generator pass for the G step.
* ``project_tuned_top_1`` (conditional only): the project's step with BERT's last layer trained
  (``text_encoder.trainable_top_layers: 1``): that layer runs forward and backward every step on
  the cached output of the frozen five.

    python benchmarks/train_throughput.py [--steps 30] [--repeats 3]

Uses real Fashion-MNIST when data/05_model_input exists (else random images of the same shape).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from _common import BUNDLED_FEATURES, parameters, save
from fashiongan.config import BaselineTraining, ConditionalTraining, overridden
from fashiongan.models.conditional_gan import (
    ConditionalDiscriminator,
    ConditionalGANConfig,
    ConditionalGenerator,
    EmbeddingConfig,
    ImageEmbedder,
)
from fashiongan.models.mlp_gan import MLPDiscriminator, MLPGANConfig, MLPGenerator
from fashiongan.text.captions import caption, stated_attributes
from fashiongan.training.baseline import train_mlp_gan
from fashiongan.training.conditional import train_conditional_gan
from fashiongan.training.losses import discriminator_loss, generator_loss, triplet_loss

MODEL_INPUT = Path("data/05_model_input/fashion_mnist.safetensors")


def load_images(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    if MODEL_INPUT.is_file():
        from safetensors.torch import load_file

        data = load_file(str(MODEL_INPUT))
        return data["train_images"][:n].clone(), data["train_labels"][:n].clone()
    return torch.rand(n, 1, 28, 28) * 2 - 1, torch.arange(n) % 10


def conditional_params(batch: int) -> ConditionalTraining:
    """``conditional.training`` from conf/base, on the CPU, one epoch, no checkpoints or logs."""
    return overridden(
        parameters("conditional").training,
        device="cpu",
        checkpoint_dir=None,
        batch_size=batch,
        epochs=1,
        log_every=10**9,
    )


def baseline_params(batch: int) -> BaselineTraining:
    """``baseline.training`` from conf/base, on the CPU, no checkpoints, logs or samples."""
    return overridden(
        parameters("baseline").training,
        device="cpu",
        checkpoint_dir=None,
        batch_size=batch,
        log_every=10**9,
        sample_every=0,
    )


def per_step(run, steps: int) -> float:
    """Seconds per step: time(2·steps) − time(steps), so set-up cost cancels out."""
    started = time.perf_counter()
    run(steps)
    short = time.perf_counter() - started
    started = time.perf_counter()
    run(2 * steps)
    return max((time.perf_counter() - started) - short, 1e-9) / steps


def baseline_reference(images: torch.Tensor, batch: int, params: BaselineTraining):
    config = MLPGANConfig(**params.model.model_dump())
    generator, discriminator = MLPGenerator(config), MLPDiscriminator(config)
    opt_g = torch.optim.Adam(generator.parameters(), 1e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), 2e-4, betas=(0.5, 0.999))
    loader = DataLoader(TensorDataset(images), batch_size=batch, shuffle=True, drop_last=True)

    def run(steps: int) -> None:
        done = 0
        while done < steps:
            for (real,) in loader:
                z = torch.randn(batch, config.noise_dim)
                d_loss = F.binary_cross_entropy_with_logits(
                    discriminator(real), torch.ones(batch)
                ) + F.binary_cross_entropy_with_logits(
                    discriminator(generator(z).detach()), torch.zeros(batch)
                )
                opt_d.zero_grad()
                d_loss.backward()
                opt_d.step()
                g_loss = F.binary_cross_entropy_with_logits(
                    discriminator(generator(torch.randn(batch, config.noise_dim))),
                    torch.ones(batch),
                )
                opt_g.zero_grad()
                g_loss.backward()
                opt_g.step()
                done += 1
                if done == steps:
                    return

    return run


def bundled_encoder(top_layers: int):
    """The bundled MiniLM as conf/base configures a base model (no head), its last
    ``top_layers`` trainable."""
    from fashiongan.generation import base_encoder_params
    from fashiongan.text.encoder import TextEncoder

    params = base_encoder_params(parameters("conditional").text_encoder, None, "mean")
    return TextEncoder.from_params(overridden(params, trainable_top_layers=top_layers), "cpu")


def conditional_reference(
    images: torch.Tensor, labels: torch.Tensor, captions: list[str], params: ConditionalTraining
):
    encoder = bundled_encoder(top_layers=0)
    config = ConditionalGANConfig(
        **params.model.model_dump(),
        image_size=images.shape[-1],
        channels=images.shape[1],
        text_dim=encoder.dim,
        aux_classes=(),
        **BUNDLED_FEATURES,
    )
    generator, discriminator = ConditionalGenerator(config), ConditionalDiscriminator(config)
    embedder = ImageEmbedder(
        EmbeddingConfig(**params.embedding.model_dump(), image_size=28, channels=1)
    )
    opt_g = torch.optim.Adam(generator.parameters(), params.g_lr, betas=params.g_betas)
    opt_d = torch.optim.Adam(discriminator.parameters(), params.d_lr, betas=params.d_betas)
    opt_e = torch.optim.Adam(embedder.parameters(), params.e_lr)
    batch, kind, margin = params.batch_size, params.loss, params.triplet_margin
    index = torch.arange(len(images))
    loader = DataLoader(
        TensorDataset(images, labels, index), batch_size=batch, shuffle=True, drop_last=True
    )

    def run(steps: int) -> None:
        done = 0
        while done < steps:
            for real, _, idx in loader:
                texts = [captions[i] for i in idx.tolist()]
                text = encoder.encode(texts)  # BERT every step
                wrong = text.roll(1, 0)
                reference = images[torch.randint(0, len(images), (batch,))]
                negative = images[torch.randint(0, len(images), (batch,))]
                has_image = torch.rand(batch) > 0.5
                fake = generator(torch.randn(batch, config.noise_dim), text, reference, has_image)
                d_loss = discriminator_loss(
                    kind,
                    discriminator(real, text),
                    discriminator(fake.detach(), text),
                    discriminator(real, wrong),
                    params.real_label,
                )
                opt_d.zero_grad()
                d_loss.backward()
                opt_d.step()
                e_loss = triplet_loss(
                    embedder(real), embedder(real.flip(0)), embedder(negative), margin
                ) + triplet_loss(
                    embedder(fake.detach()), embedder(real), embedder(negative), margin
                )
                opt_e.zero_grad()
                e_loss.backward()
                opt_e.step()
                fake = generator(torch.randn(batch, config.noise_dim), text, reference, has_image)
                g_loss = generator_loss(kind, discriminator(fake, text)) + triplet_loss(
                    embedder(fake), embedder(real).detach(), embedder(negative).detach(), margin
                )
                opt_g.zero_grad()
                g_loss.backward()
                opt_g.step()
                done += 1
                if done == steps:
                    return

    return run


def conditional_project(
    images: torch.Tensor,
    labels: torch.Tensor,
    captions: list[str],
    item_attributes: torch.Tensor,
    params: ConditionalTraining,
    top_layers: int = 0,
):
    encoder = bundled_encoder(top_layers)
    unique, embeddings, index = encoder.encode_unique(captions)  # once, cached
    tuning = {}
    if top_layers:  # what the frozen layers make of each caption, once
        hidden, mask = encoder.hidden_below_top(unique)
        tuning = {
            "text_hidden": hidden,
            "text_mask": mask,
            "text_hidden_top_layers": torch.tensor(top_layers),
            "sample_index": index[:1],
        }
    conditioning = {
        "text_embeddings": embeddings,
        "caption_index": index,
        "reference_index": torch.randint(0, len(images), (len(images),)),
        "modification_index": index.roll(1),
        "sample_text": embeddings[:1],
        "text_attributes": stated_attributes(unique),
        **tuning,
    }
    batch = params.batch_size

    def run(steps: int) -> None:
        n = steps * batch
        cond = {
            **conditioning,
            "caption_index": index[:n],
            "reference_index": conditioning["reference_index"][:n] % n,
            "modification_index": conditioning["modification_index"][:n],
            "item_attributes": item_attributes[:n],
        }
        train_conditional_gan(
            images[:n], labels[:n], cond, params, None, encoder, model_extra=BUNDLED_FEATURES
        )

    return run


def measure(runs: dict, steps: int, repeats: int, batch: int) -> dict:
    """Interleave the variants per repeat so that load changes hit both alike."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            times[name].append(per_step(run, steps))
    result = {
        name: {
            "s_per_step_median": statistics.median(t),
            "images_per_s": batch / statistics.median(t),
            "s_per_step_all": t,
        }
        for name, t in times.items()
    }
    result["speedup_project_vs_reference"] = (
        result["reference"]["s_per_step_median"] / result["project"]["s_per_step_median"]
    )
    if "project_tuned_top_1" in result:
        result["cost_tuned_top_1_vs_project"] = (
            result["project_tuned_top_1"]["s_per_step_median"]
            / result["project"]["s_per_step_median"]
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)

    baseline_batch = 32
    images, labels = load_images(4 * args.steps * 64)
    baseline_training = baseline_params(baseline_batch)
    baseline = measure(
        {
            "project": lambda steps: train_mlp_gan(
                images, overridden(baseline_training, iterations=steps)
            ),
            "reference": baseline_reference(images, baseline_batch, baseline_training),
        },
        args.steps,
        args.repeats,
        baseline_batch,
    )

    params = conditional_params(64)
    rng = random.Random(0)
    item_attributes = torch.tensor(
        [[rng.randrange(3), rng.randrange(3), rng.randrange(2)] for _ in labels]
    )  # tone, fit, pattern
    captions = [
        caption(int(label), *map(int, a), rng)
        for label, a in zip(labels, item_attributes, strict=True)
    ]
    conditional = measure(
        {
            "project": conditional_project(images, labels, captions, item_attributes, params),
            "reference": conditional_reference(images, labels, captions, params),
            "project_tuned_top_1": conditional_project(
                images, labels, captions, item_attributes, params, top_layers=1
            ),
        },
        args.steps,
        args.repeats,
        params.batch_size,
    )
    save(
        "train_throughput",
        {
            "steps": args.steps,
            "repeats": args.repeats,
            "real_data": MODEL_INPUT.is_file(),
            "baseline": {"batch_size": baseline_batch, **baseline},
            "conditional": {
                "batch_size": params.batch_size,
                "loss": params.loss,
                **conditional,
            },
        },
    )


if __name__ == "__main__":
    main()
