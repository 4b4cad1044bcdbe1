"""Training of the conditional multimodal GAN with its retrieval embedding (SynthTriplet).

Each batch mixes text-only and composed queries: with probability ``image_drop`` the generator
gets the item's caption and no image; otherwise it gets a reference item plus the modification
text that turns the reference into the target. The discriminator always judges the output
against the *target's* caption, so both kinds of query must land on the described item. An
embedding net, trained with triplet loss on real items and on generated anchors, makes the
generated image usable as a catalog query; the generator gets the same triplet term.

A step reads like pytorch/examples' DCGAN: draw a batch (:mod:`~fashiongan.training.sampling`),
read the caption features (:mod:`~fashiongan.training.text_features`: cached, or BERT's tuned
top layers), ``n_critic`` D steps, an E step, a G step. The optional terms (gradient penalty,
auxiliary heads, mode seeking) are composed from the config
(:mod:`~fashiongan.training.loss_terms`).
The discriminator's view of the caption is held fixed in the generator's step, so G cannot win
by rewriting the caption.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from fashiongan.compute import thread_hooks, torch_threads
from fashiongan.config import ConditionalTraining, fingerprinted
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
from fashiongan.training.conditioning import Conditioning
from fashiongan.training.ema import averaging_hook, generator_average
from fashiongan.training.loop import fit, run_all
from fashiongan.training.loss_terms import AuxiliaryHeads, Pass, Term, Texts, compose_terms
from fashiongan.training.losses import discriminator_loss, generator_loss, triplet_loss
from fashiongan.training.runtime import pick_device, seed_everything
from fashiongan.training.sampling import Batch, BatchSampler
from fashiongan.training.text_features import TextFeatures, text_features
from fashiongan.training.tracking import log_figure

if TYPE_CHECKING:
    from fashiongan.text.encoder import TextEncoder

#: The history's columns, in the order the logs and loss curves have always shown them.
COLUMNS = (
    "d_aux_loss", "g_aux_loss", "d_loss", "g_loss", "g_adv_loss", "g_triplet_loss", "e_loss",
    "g_diversity_loss", "g_text_kl_loss",
)  # fmt: skip
#: (images (n, C, H, W), captions (n, D)) → (scores (n,), auxiliary logits or []).
Critic = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, list[torch.Tensor]]]


def fingerprint(
    params: ConditionalTraining,
    model_extra: dict[str, Any] | None = None,
    fingerprint_extra: dict[str, Any] | None = None,
) -> str:
    """Hash of the parameters that shape the run (more epochs may continue a run).

    The block gives every field but its run control (:func:`fashiongan.config.fingerprinted`);
    ``model_extra`` joins its ``model`` entry and ``fingerprint_extra`` the top level, where the
    pipeline used to add them to the parameter dict.
    """
    model = fingerprinted(params)["model"] | (model_extra or {})
    return params_fingerprint(params, **(fingerprint_extra or {}), model=model)


def aux_heads(
    labels: torch.Tensor, text_attributes: torch.Tensor, item_attributes: torch.Tensor
) -> tuple[int, ...]:
    """Sizes of D's auxiliary heads: the number of classes, then of each attribute's values."""
    seen = torch.maximum(item_attributes.max(0).values, text_attributes.max(0).values)
    return (int(labels.max()) + 1, *(int(v) + 1 for v in seen))


def critic_of(d: nn.Module, with_heads: bool) -> Critic:
    """D as the steps call it: with its auxiliary logits when the AC-GAN term is on."""
    if with_heads:
        return lambda images, text: d(images, text, aux=True)
    return lambda images, text: (d(images, text, aux=False), [])


@dataclass
class ConditionalStep:
    """One training step: a batch, the caption features, ``n_critic`` D steps, E, then G.

    ``g``, ``d`` and ``e`` are DDP-wrapped under torchrun; ``critic`` is ``d`` as the steps call
    it; the terms come from :func:`~fashiongan.training.loss_terms.compose_terms`. The order of
    the draws and of the forward passes is the random stream every earlier run consumed, so the
    same seed still gives the same numbers (and a resumed run the uninterrupted one's).
    """

    g: nn.Module
    d: nn.Module
    e: nn.Module
    critic: Critic
    optimizers: dict[str, torch.optim.Optimizer]
    sampler: BatchSampler
    text: TextFeatures
    d_terms: list[Term]
    g_terms: list[Term]
    params: ConditionalTraining
    noise_dim: int
    rng: torch.Generator

    def __call__(self, step: int) -> dict[str, float]:
        distributed.seed_step(self.params.seed, step)  # no-op in one process
        batch = self.sampler(step)
        rows = torch.cat([batch.target_rows, batch.wrong_rows, batch.query_rows])  # (3b,)
        texts = Texts(*self.text.read(rows).chunk(3))  # (b, D) each: one pass if tuned
        n_critic = self.params.n_critic
        for k in range(n_critic):  # critic steps; the last fake keeps its graph for G
            d_pass, d_metrics = self.d_step(batch, texts, last=k == n_critic - 1)
        real_emb, negative_emb, e_loss = self.e_step(d_pass)
        g_metrics = self.g_step(d_pass, real_emb, negative_emb)
        self.text.step()  # D's and G's gradients on the caption features, if tuned
        metrics = {**d_metrics, **g_metrics, "e_loss": e_loss}
        return {name: metrics[name].item() for name in sorted(metrics, key=COLUMNS.index)}

    def d_step(
        self, batch: Batch, texts: Texts, last: bool
    ) -> tuple[Pass, dict[str, torch.Tensor]]:
        """One critic update on real / real with a wrong caption / fake (matching-aware D)."""
        with torch.set_grad_enabled(last):
            noise = torch.randn(self.params.batch_size, self.noise_dim, generator=self.rng)
            noise = distributed.shard(noise.to(batch.real.device))  # (b, Z)
            fake = self.g(noise, texts.query, batch.reference, batch.has_image)  # (b, C, H, W)
        # One pass over [real | fake], reals with two captions: (2b, 2).
        captions = torch.stack(  # (2b, 2, D): [own, wrong] for reals, [own, own] for fakes
            [torch.cat([texts.target, texts.target]), torch.cat([texts.wrong, texts.target])], 1
        )
        scores, heads = self.critic(torch.cat([batch.real, fake.detach()]), captions)
        d_real, d_fake = scores[:, 0].chunk(2)  # (b,) each, own captions
        d_wrong = scores[: len(fake), 1]  # (b,) the reals with a wrong caption
        d_loss = discriminator_loss(
            self.params.loss, d_real, d_fake, d_wrong, self.params.real_label
        )
        step = Pass(batch, texts, noise, fake, heads)
        metrics: dict[str, torch.Tensor] = {}
        for term in self.d_terms:
            loss, named = term(step)
            d_loss = d_loss + loss
            metrics.update(named)
        self.optimizers["D"].zero_grad(set_to_none=True)
        d_loss.backward()
        self.optimizers["D"].step()
        return step, {**metrics, "d_loss": d_loss}

    def e_step(self, step: Pass) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Embedder: same class close, other items far, fakes near their target."""
        batch, margin = step.batch, self.params.triplet_margin
        images = torch.cat([batch.real, batch.positive, batch.negative, step.fake.detach()])
        real, positive, negative, fake = self.e(images).chunk(4)  # (b, E) each
        e_loss = triplet_loss(real, positive, negative, margin) + triplet_loss(
            fake, real, negative, margin
        )
        self.optimizers["E"].zero_grad(set_to_none=True)
        e_loss.backward()
        self.optimizers["E"].step()
        return real, negative, e_loss

    def g_step(
        self, step: Pass, real_emb: torch.Tensor, negative_emb: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Generator: fool D, land near the target in embedding space, plus the optional terms."""
        params = self.params
        caption = step.texts.target.detach()  # D's view of the caption: not G's to rewrite
        scores, heads = self.critic(step.fake, caption)  # (b,)
        g_adv = generator_loss(params.loss, scores)
        fake_emb = self.e(step.fake)  # (b, E)
        g_triplet = triplet_loss(
            fake_emb, real_emb.detach(), negative_emb.detach(), params.triplet_margin
        )
        g_loss = g_adv + params.triplet_weight * g_triplet
        metrics = {"g_diversity_loss": torch.zeros(())}  # 0 unless mode seeking is on
        g_pass = Pass(step.batch, step.texts, step.noise, step.fake, heads)
        for term in self.g_terms:
            loss, named = term(g_pass)
            g_loss = g_loss + loss
            metrics.update(named)
        self.optimizers["G"].zero_grad(set_to_none=True)
        g_loss.backward()
        self.optimizers["G"].step()
        return {**metrics, "g_loss": g_loss, "g_adv_loss": g_adv, "g_triplet_loss": g_triplet}


def _attributes(
    conditioning: Conditioning, params: ConditionalTraining, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(U, 3) stated and (N, 3) true tone / fit / pattern, when the AC-GAN term needs them."""
    if params.aux_weight == 0:
        return None
    missing = conditioning.missing("text_attributes", "item_attributes")
    if missing:
        raise ValueError(
            f"conditional.training.aux_weight needs {missing} in the conditioning "
            "(rerun encode_conditioning), or set it to 0"
        )
    return (
        conditioning.text_attributes.long().to(device),
        conditioning.item_attributes.long().to(device),
    )


def build_models(
    params: ConditionalTraining,
    images: torch.Tensor,
    text_dim: int,
    aux_classes: tuple[int, ...],
    *,
    model_extra: dict[str, Any],
) -> tuple[ConditionalGenerator, ConditionalDiscriminator, ImageEmbedder]:
    """G, D and E, built in this order: right after seeding, it fixes their initial weights.

    ``model_extra``: the config fields the data does not fix, naming the encoder behind the
    features (``text_encoder``: ``./text_encoder`` when it is saved beside G, ``bundled`` or a
    Hugging Face name for a base model; ``text_pooling``): inference encodes with it.
    """
    config = ConditionalGANConfig(
        **params.model.model_dump(),
        **model_extra,
        image_size=images.shape[-1],
        channels=images.shape[1],
        text_dim=text_dim,
        aux_classes=aux_classes,
    )
    embedding = EmbeddingConfig(
        image_size=config.image_size, channels=config.channels, **params.embedding.model_dump()
    )
    return ConditionalGenerator(config), ConditionalDiscriminator(config), ImageEmbedder(embedding)


def _optimizers(
    params: ConditionalTraining, generator: nn.Module, discriminator: nn.Module, embedder: nn.Module
) -> dict[str, torch.optim.Optimizer]:
    """Adam each: the two time-scale rule gives D a faster rate than G."""
    return {
        "G": torch.optim.Adam(generator.parameters(), lr=params.g_lr, betas=params.g_betas),
        "D": torch.optim.Adam(discriminator.parameters(), lr=params.d_lr, betas=params.d_betas),
        "E": torch.optim.Adam(embedder.parameters(), lr=params.e_lr),
    }


def _sample_logger(
    generator: ConditionalGenerator,
    text: TextFeatures,
    params: ConditionalTraining,
    steps_per_epoch: int,
    sample_captions: list[str] | None,
) -> Callable[[int], None]:
    """After each epoch (rank 0): a grid, a row per sample caption and a column per noise."""
    noise = torch.randn(
        params.sample_columns,
        generator.config.noise_dim,
        generator=torch.Generator().manual_seed(params.seed + 1),
    )  # (S_cols, Z), the same every epoch

    def log_samples(step: int) -> None:
        if step % steps_per_epoch or not distributed.is_main_process():
            return
        device, epoch = next(generator.parameters()).device, step // steps_per_epoch
        generator.eval()
        with torch.no_grad():
            captions = text.samples()  # (S_rows, D)
            rows, cols = len(captions), len(noise)
            grid = generator(noise.repeat(rows, 1).to(device), captions.repeat_interleave(cols, 0))
        generator.train()
        figure = image_grid(grid, ncols=cols, row_labels=sample_captions, title=f"epoch {epoch}")
        log_figure(figure, f"{params.mlflow_prefix}samples/epoch_{epoch:03d}.png")

    return log_samples


def _compose_step(
    params: ConditionalTraining,
    models: tuple[ConditionalGenerator, ConditionalDiscriminator, ImageEmbedder],
    optimizers: dict[str, torch.optim.Optimizer],
    images: torch.Tensor,
    labels: torch.Tensor,
    conditioning: Conditioning,
    text: TextFeatures,
    attributes: tuple[torch.Tensor, torch.Tensor] | None,
    rng: torch.Generator,
) -> ConditionalStep:
    """Wire one step from the config: DDP, the sampler, the optional terms."""
    device = images.device
    g, d, e = (distributed.wrap_ddp(m, device) for m in models)
    caption_index = conditioning.caption_index.to(device)
    aux = None
    if params.aux_weight > 0:
        aux = AuxiliaryHeads(params.aux_weight, labels, caption_index, *attributes)
    sampler = BatchSampler(
        images, labels, conditioning, batch_size=params.batch_size, seed=params.seed,
        image_drop=params.image_drop, rng=rng,
    )  # fmt: skip
    noise_dim = models[0].config.noise_dim
    d_terms, g_terms = compose_terms(params, (g, d), aux, noise_dim, rng)
    return ConditionalStep(
        g, d, e, critic_of(d, with_heads=aux is not None), optimizers, sampler, text,
        d_terms, g_terms, params, noise_dim, rng,
    )  # fmt: skip


@dataclass
class PreparedTraining:
    """A seeded run before its first step: the step, what a checkpoint holds, what is sampled.

    ``sampled`` is the generator's average when ``ema_decay`` is on (also what the run returns
    and the pipeline saves), else the generator; ``hooks`` run after every step.
    """

    step: ConditionalStep
    state: TrainingState
    nets: tuple[ConditionalGenerator, ConditionalDiscriminator, ImageEmbedder]
    sampled: ConditionalGenerator
    hooks: list[Callable[[int], None]]
    text: TextFeatures


def prepare_training(
    images: torch.Tensor,
    labels: torch.Tensor,
    conditioning: Mapping[str, torch.Tensor] | Conditioning,
    params: ConditionalTraining,
    text_encoder: TextEncoder | None = None,
    *,
    model_extra: dict[str, Any],
) -> PreparedTraining:
    """Seed, build G, D, E (and the generator's average when on), draw the text head's first
    weights, and wire one step: every initial weight comes from ``params.seed``.

    Arguments as :func:`train_conditional_gan`'s. Benchmarks time ``prepared.step(i)`` alone.
    """
    conditioning = Conditioning.of(conditioning)
    rng = seed_everything(params.seed)
    device = distributed.setup(pick_device(params.device))
    n, batch_size = len(images), params.batch_size  # batch: global
    if n // batch_size == 0:
        raise ValueError(f"batch_size {batch_size} is larger than the {n} training images")
    distributed.check_batch(batch_size, "conditional.training.batch_size")
    attributes = _attributes(conditioning, params, device)
    text = text_features(conditioning, text_encoder, params, device)
    images, labels = images.to(device), labels.to(device)
    aux_classes = aux_heads(labels, *attributes) if params.aux_weight > 0 else ()
    text_dim = conditioning.text_dim
    nets = tuple(
        m.to(device)
        for m in build_models(params, images, text_dim, aux_classes, model_extra=model_extra)
    )
    generator, discriminator, embedder = nets
    if text_encoder is not None and text_encoder.head is not None:
        text_encoder.head.reset_parameters()  # built before seeding: drawn now, from the seed
    optimizers = _optimizers(params, generator, discriminator, embedder)
    average = generator_average(generator, params.ema_decay)  # None: off
    averaged = {} if average is None else {"G_average": average}
    modules = {"G": generator, "D": discriminator, "E": embedder, **text.modules, **averaged}
    state = TrainingState(modules, {**optimizers, **text.optimizers}, rng)
    step = _compose_step(
        params, nets, optimizers, images, labels, conditioning, text, attributes, rng
    )
    if average is None:
        return PreparedTraining(step, state, nets, generator, [], text)
    hooks = [averaging_hook(average, generator)]
    return PreparedTraining(step, state, nets, average.module, hooks, text)


def train_conditional_gan(
    images: torch.Tensor,
    labels: torch.Tensor,
    conditioning: Mapping[str, torch.Tensor] | Conditioning,
    params: ConditionalTraining,
    sample_captions: list[str] | None = None,
    text_encoder: TextEncoder | None = None,
    *,
    model_extra: dict[str, Any],
    fingerprint_extra: dict[str, Any] | None = None,
) -> tuple[ConditionalGenerator, ConditionalDiscriminator, ImageEmbedder, list[dict[str, float]]]:
    """Train G, D and the embedder (and the text encoder's top layers, when some are trainable).

    Args:
        images: (N, C, H, W) in [-1, 1]; labels: (N,) int64 class ids.
        conditioning: a :class:`~fashiongan.training.conditioning.Conditioning`, or the dict
            of tensors ``encode_conditioning`` wrote: ``text_embeddings`` (U, D) and, per item, ``caption_index``,
            ``reference_index``, ``modification_index`` (N,); ``sample_text`` (R, D) for grids.
            With ``aux_weight`` > 0 also ``text_attributes`` (U, 3),
            the tone / fit / pattern each text states (-1 = not stated), and
            ``item_attributes`` (N, 3). With a tuned encoder also ``text_hidden`` (U, T, H),
            ``text_mask`` (U, T), ``text_hidden_top_layers`` and ``sample_index`` (R,).
        params: the ``conditional.training`` block.
        sample_captions: row labels for the per-epoch sample grid.
        text_encoder: the encoder behind ``text_embeddings``; its trainable top layers, if any,
            are trained in place (learning rate ``text_lr``) and it ends on the CPU. Its head,
            if any, starts from the seed (drawn again, untrained) and trains (``text_head_lr``).
        model_extra: config fields of G and D beyond the block's ``model``, naming the encoder
            behind the features (:func:`build_models`); they shape the run, so they join the
            fingerprint.
        fingerprint_extra: other facts that shape the run (the encoder, the data's hash).

    Under torchrun, ``batch_size`` stays the global batch: every rank draws the whole batch
    (indices, noise, query kinds, negatives) from the same streams and trains on its slice; DDP
    averages the gradients. BatchNorm is synchronised on CUDA and per rank on CPU (Gloo).

    Training runs on ``num_threads`` torch threads (restored after). With ``ema_decay`` the
    returned generator is the average of its weights (the sample grids show it too), with the
    generator's file layout, so whatever loads a saved generator is unaffected.
    """
    follow_free_cores = thread_hooks(params.num_threads)  # capped by the threads torch has now
    with torch_threads(params.num_threads):
        run = prepare_training(
            images, labels, conditioning, params, text_encoder, model_extra=model_extra
        )
        steps_per_epoch = run.step.sampler.steps_per_epoch
        samples = _sample_logger(run.sampled, run.text, params, steps_per_epoch, sample_captions)
        hooks = [*follow_free_cores, *run.hooks, samples]  # the average, then grids of it
        fit(
            run.state,
            run.step,
            total_steps=params.epochs * steps_per_epoch,
            log_every=params.log_every,
            checkpoint_every=steps_per_epoch,  # every epoch
            checkpoint_dir=params.checkpoint_dir,
            fingerprint=fingerprint(params, model_extra, fingerprint_extra),
            resume=params.resume,
            after_step=run_all(hooks),
            description=f"conditional GAN ({params.loss})",
            metric_prefix=params.mlflow_prefix,
        )
        run.text.close()
    _, discriminator, embedder = run.nets
    generator = run.sampled.cpu().eval()
    return generator, discriminator.cpu().eval(), embedder.cpu().eval(), run.state.history
