"""The stateless query path: read the message → plan → draw → embed → rank.

Each step takes values and returns values; nothing here keeps a conversation (that is
:class:`fashiongan.search.conversation.ConversationSession`) or changes its arguments. A turn is
:meth:`QueryPath.plan` (what to draw and rank for, given the request and the reference), then
:meth:`QueryPath.draw`, :meth:`QueryPath.embed` and :meth:`QueryPath.rank`; the micro-batching
API runs the middle steps for several plans in one forward pass.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from fashiongan.config import SearchQuery
from fashiongan.generation import GenerationError, generate, text_encoder
from fashiongan.images import ImageInputError, to_model_input
from fashiongan.models.conditional_gan import ConditionalGenerator
from fashiongan.search.contract import EXAMPLE_QUERY, SearchInputError, SearchRequest
from fashiongan.search.conversation import SLOTS, Reference, TurnPlan, plan_turn
from fashiongan.search.implied import ImpliedItemReader
from fashiongan.search.intent import MODIFY, NEW, Intent, IntentDetector, Message, read_message
from fashiongan.search.multilingual import MultilingualReader
from fashiongan.search.ranking import Ranker, Ranking, TextVectors, Wanted
from fashiongan.search.reading import ShopperDetector
from fashiongan.text.loading import TextModelNotFoundError


@dataclass(frozen=True)
class QueryPlan:
    """Everything a turn will do, decided before anything is drawn.

    Attributes:
        model: the generator's name; ``turn``: the conversation plan (None: query by example or
            an unconditional model's samples).
        reference: the reference the turn starts from (completed when modified), or None.
        pictures: what is embedded when nothing is drawn (the reference's picture), or None.
        intent: how the message was read.
    """

    request: SearchRequest
    model: str
    turn: TurnPlan | None
    reference: Reference | None
    intent: Intent | None = None
    notices: tuple[str, ...] = ()
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def draws(self) -> bool:
        return self.turn is None or self.turn.generator_text is not None

    @property
    def wanted(self) -> Wanted:
        if self.turn is None:
            return Wanted()
        return Wanted(dict(self.turn.slots), dict(self.turn.excluded), self.turn.exclude_row)


_ENCODER_LOCKS: weakref.WeakKeyDictionary[Any, threading.Lock] = weakref.WeakKeyDictionary()
_ENCODER_LOCKS_GUARD = threading.Lock()


def encoder_lock(encoder) -> threading.Lock:
    """The one lock around ``encoder`` for every query path that shares it: a Hugging Face
    tokenizer used by two threads at once fails ("Unable to create tensor…"), and the reading,
    the notices and the text vectors all call the same one."""
    with _ENCODER_LOCKS_GUARD:
        lock = _ENCODER_LOCKS.get(encoder)
        if lock is None:
            lock = _ENCODER_LOCKS[encoder] = threading.Lock()
        return lock


def shopper_reader(encoder, query: SearchQuery) -> ShopperDetector:
    """The reading of a message that ``query`` configures: the caption grammar on ``encoder``,
    shop words and typos, implied items in ``implied_encoder``'s space, and foreign words when
    ``reading_encoder`` is ``multilingual``."""
    grammar = IntentDetector(
        encoder,
        class_threshold=query.class_threshold,
        attribute_threshold=query.attribute_threshold,
        max_words=query.max_words,
    )
    foreign = (
        MultilingualReader(query.multilingual_cutoff, query.fuzzy_cutoff)
        if query.reading_encoder == "multilingual"
        else None
    )
    implied = ImpliedItemReader(_implied_encoder(query.implied_encoder).encode)
    # the words beside a named item, on most messages: USE is ~10 ms a message cheaper there
    leftovers = ImpliedItemReader(foreign.encoder.encode) if foreign else implied
    return ShopperDetector(grammar, query.fuzzy_cutoff, foreign, implied, leftovers)


def _implied_encoder(name: str):
    """The encoder ``search_app.query.implied_encoder`` names, mean-pooled as sentence-transformers
    models are trained to be read; a name that loads nothing is the user's setting to fix."""
    try:
        return text_encoder(name, "mean")
    except TextModelNotFoundError:
        raise TextModelNotFoundError(
            f"search_app.query.implied_encoder {name!r} loads no text model: set it to bundled "
            "(all-MiniLM-L6-v2) or to a BERT folder on disk (conf/base/parameters_search_index.yml)"
        ) from None


def embedded_pictures(plan: QueryPlan, drawn: torch.Tensor | None) -> torch.Tensor | None:
    """What a turn embeds: its drawing, else the uploaded picture (query by example), else
    nothing."""
    if drawn is not None:
        return drawn
    if plan.turn is None and plan.reference is not None:
        return plan.reference.image
    return None


def fit_images(images: torch.Tensor, size: int, channels: int) -> torch.Tensor:
    """Resize/convert (B, C, H, W) images to what a network takes."""
    if images.shape[1] != channels:
        images = images.mean(1, keepdim=True) if channels == 1 else images.expand(-1, 3, -1, -1)
    if images.shape[-1] != size or images.shape[-2] != size:
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    return images


class QueryPath:
    """The steps of one query over fixed models and settings (thread-safe: no state but the
    text vectors' cache; every use of the shared sentence encoder holds :func:`encoder_lock`).

    Args:
        generators: name → generator; ``default_model`` draws unless a request names another.
        embedder: ``ImageEmbedder`` (images in [-1, 1] → unit vectors).
        ranker: scores the catalog.
        text_vectors: the default model's sentence encoder, cached.
        query: the ``search_app.query`` settings.
    """

    def __init__(
        self,
        generators: dict[str, torch.nn.Module],
        embedder: torch.nn.Module,
        ranker: Ranker,
        text_vectors: TextVectors,
        query: SearchQuery,
    ) -> None:
        self.generators = generators
        self.embedder = embedder
        self.ranker = ranker
        self.text_vectors = text_vectors
        self.query = query
        self.encoder_lock = encoder_lock(text_vectors.encoder)
        conditional = [n for n, g in generators.items() if isinstance(g, ConditionalGenerator)]
        self.default_model = conditional[0] if conditional else next(iter(generators))
        self.detector = shopper_reader(text_vectors.encoder, query)

    def generator(self, model: str | None) -> tuple[str, torch.nn.Module]:
        name = model or self.default_model
        if name not in self.generators:
            raise SearchInputError(
                f"unknown model {name!r}; available: {list(self.generators)}", "model"
            )
        return name, self.generators[name]

    def upload(self, request: SearchRequest, model: str) -> Reference | None:
        """The request's picture as a reference, at the size the model reads (None: none)."""
        if request.image is None:
            return None
        generator = self.generators[model]
        c = (
            generator.config
            if isinstance(generator, ConditionalGenerator)
            else self.embedder.config
        )
        try:
            picture = to_model_input(request.image, c.image_size, c.channels)
        except ImageInputError as err:
            raise SearchInputError(str(err), "image") from err
        return Reference("upload", picture, dict.fromkeys(SLOTS))

    def notices(self, request: SearchRequest, model: str) -> list[str]:
        """Problems that are not errors: the text cut at the tokenizer's limit, a converted image."""
        notices = []
        if request.text is not None:
            encoder = self.text_vectors.encoder
            with self.encoder_lock:
                n_tokens = int(encoder.tokenize([request.text]).n_tokens[0])
            if n_tokens > encoder.max_length:
                notices.append(
                    f"Your text is {n_tokens} tokens long; the text encoder reads the first "
                    f"{encoder.max_length}, the rest was ignored."
                )
        if request.image is not None:
            generator = self.generators[model]
            c = (
                generator.config
                if isinstance(generator, ConditionalGenerator)
                else self.embedder.config
            )
            target = "L" if c.channels == 1 else "RGB"
            if request.image.mode != target:
                notices.append(f"Your {request.image.mode} image was converted to {target}.")
        return notices

    def read(self, text: str, has_reference: bool, with_picture: bool) -> Message:
        """How the message is read: new, modify or start over, and what it names."""
        with self.encoder_lock:
            return read_message(self.detector, text, has_reference, with_picture)

    def plan_turn(self, message: Message, text: str, reference: Reference | None) -> TurnPlan:
        """The message planned against the reference (see :func:`plan_turn`).

        Raises:
            SearchInputError: nothing in the message could be read (which words, and an example).
        """
        fresh = message.kind == NEW or (message.kind == MODIFY and reference is None)
        if fresh and not _understood(message.intent, message.steps):
            unknown = getattr(message.intent, "unknown", ()) or text.split()
            words = ", ".join(f"'{w}'" for w in unknown)
            raise SearchInputError(
                f"I could not read {words}: name the item, e.g. '{EXAMPLE_QUERY}'", "text"
            )
        q = self.query
        return plan_turn(message, text, reference, q.modify_generates, q.use_intent_caption)

    @torch.no_grad()
    def draw(self, plan: QueryPlan) -> torch.Tensor | None:
        """(n, C, H, W) images in [-1, 1] for the plan, or None when nothing is drawn."""
        name, request = plan.model, plan.request
        generator = self.generators[name]
        if not isinstance(generator, ConditionalGenerator):
            return generate(generator, request.n_images, request.seed)
        if plan.turn is None or plan.turn.generator_text is None:
            return None
        reference = plan.turn.generator_reference
        if reference is not None:
            c = generator.config
            reference = fit_images(reference, c.image_size, c.channels)
        text = plan.turn.generator_text
        try:
            features = self.caption_features(name, text)
            return generate(generator, request.n_images, request.seed, text, reference, features)
        except GenerationError as err:
            raise SearchInputError(str(err)) from err

    def caption_features(self, model: str, text: str) -> torch.Tensor:
        """(1, text_dim) features of ``text`` for the conditional generator ``model``, encoded
        under its encoder's :func:`encoder_lock`: the default model's from the text vectors (the
        ranking's too, so encoded once), another's by the encoder it was trained with."""
        if model == self.default_model:
            return self._text_vector(text)
        config = self.generators[model].config
        encoder = text_encoder(config.text_encoder, config.text_pooling)
        with encoder_lock(encoder):
            return encoder.encode([text.strip()])

    @torch.no_grad()
    def embed(self, images: torch.Tensor) -> np.ndarray:
        """(B, C, H, W) in [-1, 1] → (1, dim) unit query vector (mean of the B embeddings)."""
        c = self.embedder.config
        vectors = self.embedder(fit_images(images.float(), c.image_size, c.channels))
        return F.normalize(vectors.mean(0, keepdim=True), dim=1).numpy()

    def blank_query(self, plan: QueryPlan) -> np.ndarray | None:
        """A zero (1, dim) query vector for a plan that excludes values and draws nothing ("not
        a bag"): its ranking is the exclusions' alone, every other item in catalog order. None
        for any other plan."""
        if plan.turn is None or not any(plan.turn.excluded.values()):
            return None
        return np.zeros((1, self.ranker.catalog_vectors.shape[1]), dtype=np.float32)

    def rank(self, plan: QueryPlan, query: np.ndarray) -> Ranking:
        """The catalog ranked for the embedded query and the plan's text and wanted item."""
        text = None if plan.turn is None else plan.turn.query_text
        text_vector = self._text_vector(text) if text and self.query.fuse_text else None
        return self.ranker.rank(query, text_vector, plan.wanted, plan.request.k)

    # --- the micro-batching API: several plans' forward passes as one ------------------------
    @torch.no_grad()
    def draw_many(self, plans: Sequence[QueryPlan]) -> list[torch.Tensor | None]:
        """:meth:`draw` for each plan. The default model's drawings run as one forward pass (two
        when some plans draw from a reference picture and some do not), each plan's noise drawn
        from its own seed as :func:`fashiongan.generation.generate` draws it, so each plan gets
        the images its own :meth:`draw` returns; other plans are drawn one by one."""
        drawn: list[torch.Tensor | None] = [None] * len(plans)
        groups: dict[bool, list[int]] = {}
        for i, plan in enumerate(plans):
            if self._batchable(plan):
                groups.setdefault(plan.turn.generator_reference is not None, []).append(i)
            else:
                drawn[i] = self.draw(plan)
        for rows in groups.values():
            for i, images in zip(rows, self._draw_together([plans[i] for i in rows]), strict=True):
                drawn[i] = images
        return drawn

    @torch.no_grad()
    def embed_many(self, pictures: Sequence[torch.Tensor]) -> list[np.ndarray]:
        """:meth:`embed` for each (B_i, C, H, W) batch of pictures, in one forward pass."""
        if not pictures:
            return []
        c = self.embedder.config
        fitted = [fit_images(p.float(), c.image_size, c.channels) for p in pictures]
        vectors = self.embedder(torch.cat(fitted)).split([len(p) for p in fitted])
        return [F.normalize(v.mean(0, keepdim=True), dim=1).numpy() for v in vectors]

    def _batchable(self, plan: QueryPlan) -> bool:
        """A drawing of the default conditional model from a caption (what the text vectors
        encode)."""
        generator = self.generators[plan.model]
        return (
            plan.model == self.default_model
            and isinstance(generator, ConditionalGenerator)
            and plan.turn is not None
            and plan.turn.generator_text is not None
        )

    def _draw_together(self, plans: Sequence[QueryPlan]) -> list[torch.Tensor]:
        """One forward pass for plans that all (or none) draw from a reference picture."""
        generator = self.generators[self.default_model]
        c = generator.config
        counts = [plan.request.n_images for plan in plans]
        noise = [
            torch.randn(n, c.noise_dim, generator=torch.Generator().manual_seed(plan.request.seed))
            for plan, n in zip(plans, counts, strict=True)
        ]
        features = [
            self._text_vector(plan.turn.generator_text).expand(n, -1)
            for plan, n in zip(plans, counts, strict=True)
        ]
        references = None
        if plans[0].turn.generator_reference is not None:
            references = torch.cat([
                fit_images(plan.turn.generator_reference, c.image_size, c.channels).expand(
                    n, -1, -1, -1
                )
                for plan, n in zip(plans, counts, strict=True)
            ])  # fmt: skip
        images = generator(torch.cat(noise), torch.cat(features), references)
        # copies: a session keeps its turn's first image, which must not hold the whole batch
        return [part.clone() for part in images.split(counts)]

    def _text_vector(self, text: str) -> torch.Tensor:
        with self.encoder_lock:
            return self.text_vectors(text)


def _understood(intent: Intent, steps: dict[str, Any]) -> bool:
    """Anything read: a class, an attribute, an exclusion, a change, or an item the catalog does
    not carry (which still searches, saying so)."""
    readable = getattr(intent, "readable", None)
    if readable is not None:
        return bool(readable or steps)
    named = any(getattr(intent, s) is not None for s in ("label", "tone", "fit", "pattern"))
    return named or bool(steps)
