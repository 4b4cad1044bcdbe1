"""Training of the conditional multimodal GAN with its retrieval embedding (SynthTriplet).

Each batch mixes text-only and composed queries: with probability ``image_drop`` the generator
gets the item's caption and no image; otherwise it gets a reference item plus the modification
text that turns the reference into the target. The discriminator always judges the output
against the *target's* caption, so both kinds of query must land on the described item. An
embedding net, trained with triplet loss on real items and on generated anchors, makes the
generated image usable as a catalog query; the generator gets the same triplet term.

With a text encoder whose top layers are trainable, those layers run every step on the cached
output of the frozen ones and learn from every discriminator loss that reads the caption (real
vs fake, the matching-aware wrong captions, the gradient penalty; summed over the ``n_critic``
steps) and from the generator's use of the query; the discriminator's view of the caption is
held fixed in the generator's step, so G cannot win by rewriting the caption. Dropout stays off
in those layers: a caption's features depend on the weights only, and resuming stays exact.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import torch

from fashiongan.models.conditional_gan import (
    ConditionalDiscriminator,
    ConditionalGANConfig,
    ConditionalGenerator,
    EmbeddingConfig,
    ImageEmbedder,
)
from fashiongan.plotting import image_grid
from fashiongan.training import distributed
from fashiongan.training.checkpoint import TrainingState, params_fingerprint
from fashiongan.training.loop import fit
from fashiongan.training.losses import (
    LOSSES,
    auxiliary_loss,
    discriminator_loss,
    generator_loss,
    gradient_penalty,
    triplet_loss,
)
from fashiongan.training.runtime import pick_device, seed_everything
from fashiongan.training.tracking import log_figure

if TYPE_CHECKING:
    from fashiongan.text.encoder import TextEncoder

_NOT_SHAPING = {"epochs", "log_every", "checkpoint_dir", "resume", "device", "mlflow_prefix"}


def fingerprint(params: dict[str, Any]) -> str:
    """Hash of the parameters that shape the run (more epochs may continue a run)."""
    return params_fingerprint(params, _NOT_SHAPING)


def validate(params: dict[str, Any]) -> None:
    """Fail early, naming the parameter, instead of deep inside an epoch."""
    if params["loss"] not in LOSSES:
        raise ValueError(f"conditional.training.loss is {params['loss']!r}; choose one of {LOSSES}")
    for key in ("epochs", "batch_size", "n_critic"):
        if int(params[key]) < 1:
            raise ValueError(f"conditional.training.{key} must be ≥ 1, got {params[key]}")
    if params.get("diversity_weight", 0) < 0:
        raise ValueError(
            f"conditional.training.diversity_weight must be ≥ 0, got {params['diversity_weight']}"
        )
    if params.get("aux_weight", 0) < 0:
        raise ValueError(f"conditional.training.aux_weight must be ≥ 0, got {params['aux_weight']}")
    if "text_lr" in params and params["text_lr"] <= 0:
        raise ValueError(f"conditional.training.text_lr must be > 0, got {params['text_lr']}")
    for key in ("image_drop", "attribute_mismatch"):
        if not 0.0 <= params.get(key, 0.0) <= 1.0:
            raise ValueError(f"conditional.training.{key} must be in [0, 1], got {params[key]}")


def _same_class_sampler(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(classes, max_count) table of member indices and the count per class, for positive sampling."""
    n_classes = int(labels.max()) + 1
    members = [torch.nonzero(labels == c).squeeze(1) for c in range(n_classes)]
    counts = torch.tensor([len(m) for m in members])
    table = torch.zeros(n_classes, int(counts.max()), dtype=torch.long)
    for c, m in enumerate(members):
        table[c, : len(m)] = m
    return table, counts


def aux_heads(
    labels: torch.Tensor, text_attributes: torch.Tensor, item_attributes: torch.Tensor
) -> tuple[int, ...]:
    """Sizes of D's auxiliary heads: the number of classes, then of each attribute's values."""
    seen = torch.maximum(item_attributes.max(0).values, text_attributes.max(0).values)
    return (int(labels.max()) + 1, *(int(v) + 1 for v in seen))


def same_class_contradictions(
    idx: torch.Tensor,
    uniform: torch.Tensor,
    labels: torch.Tensor,
    class_table: torch.Tensor,
    class_counts: torch.Tensor,
    caption_index: torch.Tensor,
    text_attributes: torch.Tensor,
    item_attributes: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """For each item, the caption of a random item of its class, and whether it contradicts it.

    Attribute-level negatives for the matching-aware discriminator: "a dark coat" next to a
    light coat. Other-class captions alone never make D (and so G) read the tone, fit and
    pattern words. A caption contradicts an item when it states a value the item does not have;
    one that states nothing the item lacks ("a coat") is no negative and is not used.

    Args:
        idx: (B,) item indices; uniform: (B,) in [0, 1), picks the same-class item.
        class_table, class_counts: from :func:`_same_class_sampler`.
        caption_index: (N,) each item's text row; text_attributes: (U, 3) stated tone, fit,
            pattern per text (-1 = not stated); item_attributes: (N, 3) the items' own values.

    Returns:
        The chosen caption rows (B,) and the mask (B,) of those that contradict their item.
    """
    classes = labels[idx]
    other = class_table[classes, (uniform * class_counts[classes]).long()]
    rows = caption_index[other]
    stated = text_attributes[rows]  # (B, 3)
    contradicts = ((stated >= 0) & (stated != item_attributes[idx])).any(1)
    return rows, contradicts


def train_conditional_gan(
    images: torch.Tensor,
    labels: torch.Tensor,
    conditioning: dict[str, torch.Tensor],
    params: dict[str, Any],
    sample_captions: list[str] | None = None,
    text_encoder: TextEncoder | None = None,
) -> tuple[ConditionalGenerator, ConditionalDiscriminator, ImageEmbedder, list[dict[str, float]]]:
    """Train G, D and the embedder (and the text encoder's top layers, when some are trainable).

    Args:
        images: (N, C, H, W) in [-1, 1]; labels: (N,) int64 class ids.
        conditioning: ``text_embeddings`` (U, D) and, per item, ``caption_index``,
            ``reference_index``, ``modification_index`` (N,); ``sample_text`` (R, D) for grids.
            With ``attribute_mismatch`` or ``aux_weight`` > 0 also ``text_attributes`` (U, 3),
            the tone / fit / pattern each text states (-1 = not stated), and
            ``item_attributes`` (N, 3).
        params: the ``conditional.training`` parameters.
        sample_captions: row labels for the per-epoch sample grid.
        text_encoder: the encoder behind ``text_embeddings``; when it has trainable top layers
            they are trained in place (learning rate ``text_lr``) on the conditioning's
            ``text_hidden`` (U, T, H) and ``text_mask`` (U, T) from
            :meth:`~fashiongan.text.encoder.TextEncoder.hidden_below_top`, the sample grid uses
            ``sample_index`` (R,), and the encoder ends on the CPU. None or frozen: the cached
            ``text_embeddings`` are the features.

    Under torchrun, ``batch_size`` stays the global batch: every rank draws the whole batch
    (indices, noise, query kinds, negatives) from the same streams and trains on its slice; DDP
    averages the gradients. BatchNorm is synchronised on CUDA and per rank on CPU (Gloo).
    """
    validate(params)
    rng = seed_everything(params["seed"])
    device = distributed.setup(pick_device(params.get("device", "auto")))
    table = conditioning["text_embeddings"].float().to(device)
    attribute_mismatch = float(params.get("attribute_mismatch", 0.0))
    aux_weight = float(params.get("aux_weight", 0.0))
    text_attributes = item_attributes = None
    if attribute_mismatch > 0 or aux_weight > 0:
        missing = {"text_attributes", "item_attributes"} - set(conditioning)
        if missing:
            raise ValueError(
                f"conditional.training.attribute_mismatch and aux_weight need {sorted(missing)} "
                "in the conditioning (rerun encode_conditioning), or set both to 0"
            )
        text_attributes = conditioning["text_attributes"].long().to(device)
        item_attributes = conditioning["item_attributes"].long().to(device)
    tuning = text_encoder is not None and text_encoder.trainable_top_layers > 0
    if tuning:
        k = text_encoder.trainable_top_layers
        rerun = "rerun encode_conditioning with the same text_encoder parameters"
        missing = {"text_hidden", "text_mask", "text_hidden_top_layers", "sample_index"}
        missing -= set(conditioning)
        if missing:
            raise ValueError(
                f"fine-tuning the text encoder's top layers needs {sorted(missing)} in the "
                f"conditioning: {rerun}"
            )
        cached_k = int(conditioning["text_hidden_top_layers"])
        if cached_k != k:  # another k's cache would run a layer twice, or skip one
            raise ValueError(
                f"fine-tuning the text encoder's top {k} layers needs the conditioning cached "
                f"below them, but it was cached below {cached_k}: {rerun}"
            )
        if distributed.world() > 1:
            raise ValueError(
                "fine-tuning the text encoder's top layers is not supported under torchrun: "
                "set conditional.text_encoder.trainable_top_layers to 0"
            )
        if "text_lr" not in params:
            raise ValueError(
                "conditional.training.text_lr (the learning rate of the tuned text layers) is "
                "needed when text_encoder.trainable_top_layers > 0"
            )
        text_hidden = conditioning["text_hidden"].float().to(device)  # (U, T, H)
        text_mask = conditioning["text_mask"].long().to(device)  # (U, T)
        if len(text_hidden) != len(table):
            raise ValueError(
                f"text_hidden has {len(text_hidden)} texts but text_embeddings {len(table)}"
            )
        text_layers = text_encoder.to_device(device).top_layers
    config = ConditionalGANConfig(
        **{k: v for k, v in params["model"].items()},
        image_size=images.shape[-1],
        channels=images.shape[1],
        text_dim=table.shape[1],
        aux_classes=aux_heads(labels, text_attributes, item_attributes) if aux_weight else (),
    )
    generator = ConditionalGenerator(config).to(device)
    discriminator = ConditionalDiscriminator(config).to(device)
    embedder = ImageEmbedder(
        EmbeddingConfig(
            image_size=config.image_size, channels=config.channels, **params["embedding"]
        )
    ).to(device)
    opt_g = torch.optim.Adam(
        generator.parameters(), lr=params["g_lr"], betas=tuple(params["g_betas"])
    )
    opt_d = torch.optim.Adam(
        discriminator.parameters(), lr=params["d_lr"], betas=tuple(params["d_betas"])
    )
    opt_e = torch.optim.Adam(embedder.parameters(), lr=params["e_lr"])
    modules = {"G": generator, "D": discriminator, "E": embedder}
    optimizers = {"G": opt_g, "D": opt_d, "E": opt_e}
    if tuning:  # checkpointed with the rest: a resumed run continues the tuned layers too
        modules["T"] = text_layers
        optimizers["T"] = opt_t = torch.optim.Adam(text_layers.parameters(), lr=params["text_lr"])
    state = TrainingState(modules, optimizers, rng)

    images, labels = images.to(device), labels.to(device)
    caption_index = conditioning["caption_index"].to(device)
    reference_index = conditioning["reference_index"].to(device)
    modification_index = conditioning["modification_index"].to(device)
    class_table, class_counts = (t.to(device) for t in _same_class_sampler(labels.cpu()))
    n, batch, kind = len(images), params["batch_size"], params["loss"]  # batch: global
    steps_per_epoch = n // batch
    if steps_per_epoch == 0:
        raise ValueError(f"batch_size {batch} is larger than the {n} training images")
    distributed.check_batch(batch, "conditional.training.batch_size")
    g, d, e = (distributed.wrap_ddp(m, device) for m in (generator, discriminator, embedder))
    shard = distributed.shard
    use_amp = device.type == "cuda" and params.get("amp", True)
    autocast = (
        (lambda: torch.autocast("cuda", dtype=torch.bfloat16))
        if use_amp
        else contextlib.nullcontext
    )
    permutations: dict[int, torch.Tensor] = {}
    sample_text = conditioning["sample_text"].float().to(device)
    sample_noise = torch.randn(
        params["sample_columns"],
        config.noise_dim,
        generator=torch.Generator().manual_seed(params["seed"] + 1),
    )

    def batch_indices(step: int) -> torch.Tensor:
        epoch, i = divmod(step, steps_per_epoch)
        if epoch not in permutations:  # stateless per epoch: resuming mid-run needs no extra state
            permutations.clear()
            permutations[epoch] = torch.randperm(
                n, generator=torch.Generator().manual_seed(params["seed"] * 7919 + epoch)
            )
        return permutations[epoch][i * batch : (i + 1) * batch].to(device)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=rng).to(device)

    def text_features(rows: torch.Tensor) -> torch.Tensor:
        """(R,) text rows → (R, D): the cached features, or the tuned top layers' output."""
        if not tuning:
            return table[rows]
        unique, inverse = torch.unique(rows, return_inverse=True)
        length = int(text_mask[unique].sum(1).max())  # right-padded: drop shared padding
        return text_encoder.top(text_hidden[unique, :length], text_mask[unique, :length])[inverse]

    def mismatched_captions(idx: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Rows of captions that do not describe the batch's items (B,), for the matching-aware D.

        Another item's caption (so mostly another class); with ``attribute_mismatch``, that
        share of the batch gets a same-class caption that contradicts the item instead.
        """
        rolled = rows.roll(1, dims=0)
        if attribute_mismatch == 0:
            return rolled
        uniform = torch.rand(len(idx), generator=rng).to(device)
        same_class, contradicts = same_class_contradictions(
            idx, uniform, labels, class_table, class_counts, caption_index,
            text_attributes, item_attributes,
        )  # fmt: skip
        chosen = (torch.rand(len(idx), generator=rng) < attribute_mismatch).to(device)
        return torch.where(chosen & contradicts, same_class, rolled)

    def train_step(step: int) -> dict[str, float]:
        # Every draw is of the global batch (B); each rank keeps its slice (b = B / ranks).
        distributed.seed_step(params["seed"], step)  # no-op in one process
        idx = batch_indices(step)
        all_rows = caption_index[idx]  # (B,) text rows
        mismatched_rows = shard(mismatched_captions(idx, all_rows))  # someone else's: (b,)
        idx, target_rows = shard(idx), shard(all_rows)
        real = images[idx]  # (b, C, H, W)
        has_image = shard(
            (torch.rand(batch, generator=rng) >= params["image_drop"]).to(device)
        )  # composed query?
        reference = images[reference_index[idx]]
        query_rows = torch.where(has_image, modification_index[idx], target_rows)
        with autocast():  # one pass of the text layers (if tuned) for all three: (b, D) each
            text = text_features(torch.cat([target_rows, mismatched_rows, query_rows]))
        if tuning:  # D and G take a leaf copy; its summed gradient runs the text layers back once
            tuned_text, text = text, text.detach().requires_grad_()
        target_text, mismatched_text, query_text = text.chunk(3)
        if aux_weight:  # real: what the items are; asked: what the query asks for (-1: nothing)
            real_truth = torch.cat([labels[idx, None], item_attributes[idx]], 1)
            stated = text_attributes[caption_index[idx]]  # a composed query fixes every attribute
            asked = torch.cat(
                [labels[idx, None], torch.where(has_image[:, None], item_attributes[idx], stated)],
                1,
            )
        negative = images[shard(torch.randint(0, n, (batch,), generator=rng).to(device))]
        positive = images[
            class_table[
                labels[idx],
                (
                    shard(torch.rand(batch, generator=rng).to(device)) * class_counts[labels[idx]]
                ).long(),
            ]
        ]

        for k in range(params["n_critic"]):  # critic steps; the last fake keeps its graph for G
            with torch.set_grad_enabled(k == params["n_critic"] - 1), autocast():
                last_noise = shard(randn(batch, config.noise_dim))
                fake = g(last_noise, query_text, reference, has_image)
            with autocast():  # one pass over [real | real with wrong caption | fake]: (3b,)
                scores = d(
                    torch.cat([real, real, fake.detach()]),
                    torch.cat([target_text, mismatched_text, target_text]),
                    aux=bool(aux_weight),
                )
                if aux_weight:  # D learns to name what real items are: class, tone, fit, pattern
                    scores, aux_logits = scores
                    d_aux = auxiliary_loss([a[: len(real)] for a in aux_logits], real_truth)
                d_real, d_mismatch, d_fake = scores.float().chunk(3)
                d_loss = discriminator_loss(kind, d_real, d_fake, d_mismatch, params["real_label"])
                if aux_weight:
                    d_loss = d_loss + aux_weight * d_aux
            if kind == "wgan-gp":
                alpha = shard(torch.rand(batch, generator=rng).to(device))
                d_loss = d_loss + params["gp_lambda"] * gradient_penalty(
                    lambda x: d(x, target_text), real, fake.detach().float(), alpha
                )
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()

        with autocast():  # embedder: same class close, other items far, fakes near their target
            real_emb, positive_emb, negative_emb, fake_emb = (
                e(torch.cat([real, positive, negative, fake.detach()])).float().chunk(4)
            )
            margin = params["triplet_margin"]
            e_loss = triplet_loss(real_emb, positive_emb, negative_emb, margin) + triplet_loss(
                fake_emb, real_emb, negative_emb, margin
            )
        opt_e.zero_grad(set_to_none=True)
        e_loss.backward()
        opt_e.step()

        with autocast():  # generator: fool D, land near the target in embedding space, stay diverse
            caption = target_text.detach()  # D's view of the caption: not G's to rewrite
            if aux_weight:  # …and be named by D as what was asked for
                g_scores, fake_aux = d(fake, caption, aux=True)
                g_aux = auxiliary_loss(fake_aux, asked)
            else:
                g_scores = d(fake, caption)
            g_adv = generator_loss(kind, g_scores.float())
            g_triplet = triplet_loss(
                e(fake).float(), real_emb.detach(), negative_emb.detach(), margin
            )
            g_loss = g_adv + params["triplet_weight"] * g_triplet
            if aux_weight:
                g_loss = g_loss + aux_weight * g_aux
            g_diversity = torch.zeros(())
            # Mode seeking (Mao et al. 2019) on half a batch.
            if params.get("diversity_weight", 0) > 0:
                z_b = shard(randn(batch // 2, config.noise_dim))  # per rank: its first half
                h = len(z_b)
                z_a = last_noise[:h]
                other = g(z_b, query_text[:h], reference[:h], has_image[:h])
                ratio = (fake[:h] - other).abs().mean() / (z_a - z_b).abs().mean()
                g_diversity = 1.0 / (ratio.float() + 1e-5)
                g_loss = g_loss + params["diversity_weight"] * g_diversity
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        if tuning:  # D's and G's gradients on the text features, through the text layers once
            opt_t.zero_grad(set_to_none=True)
            tuned_text.backward(text.grad)
            opt_t.step()
        aux_metrics = {"d_aux_loss": d_aux.item(), "g_aux_loss": g_aux.item()} if aux_weight else {}
        return {
            **aux_metrics,
            "d_loss": d_loss.item(),
            "g_loss": g_loss.item(),
            "g_adv_loss": g_adv.item(),
            "g_triplet_loss": g_triplet.item(),
            "e_loss": e_loss.item(),
            "g_diversity_loss": g_diversity.item(),
        }

    def log_samples(step: int) -> None:
        if step % steps_per_epoch or not distributed.is_main_process():
            return
        generator.eval()
        with torch.no_grad():
            text = text_features(conditioning["sample_index"].to(device)) if tuning else sample_text
            rows, cols = len(text), len(sample_noise)
            grid = generator(
                sample_noise.repeat(rows, 1).to(device), text.repeat_interleave(cols, 0)
            )
        generator.train()
        figure = image_grid(
            grid, ncols=cols, row_labels=sample_captions, title=f"epoch {step // steps_per_epoch}"
        )
        log_figure(
            figure,
            f"{params.get('mlflow_prefix', '')}samples/epoch_{step // steps_per_epoch:03d}.png",
        )
        figure.clear()

    fit(
        state,
        train_step,
        total_steps=params["epochs"] * steps_per_epoch,
        log_every=params["log_every"],
        checkpoint_every=steps_per_epoch,  # every epoch
        checkpoint_dir=params.get("checkpoint_dir"),
        fingerprint=fingerprint(params),
        resume=params.get("resume", True),
        after_step=log_samples,
        description=f"conditional GAN ({kind})",
        metric_prefix=params.get("mlflow_prefix", ""),
    )
    if tuning:
        text_encoder.to_device("cpu")
    return generator.cpu().eval(), discriminator.cpu().eval(), embedder.cpu().eval(), state.history
