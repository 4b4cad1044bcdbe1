"""The search service: text and/or a picture → reading → generated image → embedding → top-K.

One :class:`SearchService` serves every caller (the ``fashiongan search`` CLI, the Gradio app and
its JSON API, the benchmarks). It composes the parts: the input contract
(:mod:`~fashiongan.search.contract`), the stateless query path (:mod:`~fashiongan.search.query`:
read → plan → draw → embed → rank), and the conversations (:class:`~fashiongan.search.
conversation.ConversationSession`, kept in a :class:`~fashiongan.search.conversation.
SessionStore`). Bad input raises :class:`SearchInputError` with one line that says what is wrong;
the service itself keeps serving. Problems that are not errors (text cut at the tokenizer limit,
an image converted from RGBA) come back as ``notices``.

Query kinds:
    a description ("a dark ankle boot", "black running trainers"): the reading, in the caption
        grammar, is what the conditional generator draws; without a class, the text as typed.
    a modification ("darker", "as a dress") of the reference (the last drawing, a picked item or
        an uploaded picture): the reference's class and attributes with the change applied.
    image only: the picture itself is embedded (query by example), nothing is generated.

Settings are fixed when the service is built (:meth:`SearchService.with_query` builds another
over the same models). Load one from the project with :func:`fashiongan.search.loading.
load_service`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from fashiongan.attributes import assign
from fashiongan.config import SearchQuery, overridden
from fashiongan.generation import (
    GenerationError,
    configured_text_encoder,
    generate,
    text_encoder,
)
from fashiongan.models.conditional_gan import ConditionalGenerator
from fashiongan.pixels import from_uint8
from fashiongan.search.catalog import Catalog
from fashiongan.search.contract import (
    EXAMPLE_QUERY,
    SearchInputError,
    SearchRequest,
    check_request,
    check_text,
)
from fashiongan.search.conversation import (
    ConversationSession,
    Reference,
    SessionStore,
    Turn,
    summary,
)
from fashiongan.search.intent import MODIFY, Intent
from fashiongan.search.query import QueryPath, QueryPlan, fit_images
from fashiongan.search.ranking import Ranker, Ranking, TextVectors, Wanted

__all__ = ["EXAMPLE_QUERY", "Catalog", "SearchInputError", "SearchResult", "SearchService"]


@dataclass(frozen=True)
class SearchResult:
    """Everything one turn produced; :meth:`to_dict` is the JSON the CLI and the API return."""

    model: str
    text: str | None
    had_image: bool
    intent: Intent | None
    generator_text: str | None
    images: torch.Tensor | None  # (n, C, H, W) in [-1, 1]: what was generated
    hits: list[dict[str, Any]]
    notices: tuple[str, ...] = ()
    timings_ms: dict[str, float] = field(default_factory=dict)
    conversation: dict[str, Any] | None = None  # id, turn, decision, reason, reference, wanted
    reference_image: torch.Tensor | None = None  # (1, C, H, W): what this turn started from
    scores: torch.Tensor | None = None  # (N,) every item's score, when the service scored them

    @property
    def keywords(self) -> list[str]:
        return [] if self.intent is None else [k.describe() for k in self.intent.keywords]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "query": {"text": self.text, "image": self.had_image},
            "keywords": self.keywords,
            "intent": None if self.intent is None else self.intent.to_dict(),
            "generator_text": self.generator_text,
            "generated_images": 0 if self.images is None else int(self.images.shape[0]),
            "results": self.hits,
            "notices": list(self.notices),
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
            "conversation": self.conversation,
        }


class SearchService:
    """Answers queries against one catalog with one embedder and one or more generators.

    Args:
        generators: name → generator; the first conditional one is the default.
        embedder: ``ImageEmbedder`` (images in [-1, 1] → unit vectors).
        index: a faiss index over the catalog vectors (row i = catalog row i).
        catalog: the items (:meth:`Catalog.measured` for the attribute terms of the ranking).
        query: the ``search_app.query`` settings (defaults and limits).
        encoder: the sentence encoder for reading and ranking; default: the one the default
            generator was trained with (shared with generation, loaded once per process).
        title_vectors: (N, text_dim) the titles' text vectors (encoded here when None and the
            ranking fuses text).
        attribute_thresholds: ``fashiongan.attributes.fit_thresholds`` output; measures the tone,
            fit and pattern of a picked item or an upload (None: those stay unknown).
        max_conversations: conversations kept for the app and the API.
    """

    def __init__(
        self,
        generators: dict[str, torch.nn.Module],
        embedder: torch.nn.Module,
        index,
        catalog: Catalog,
        query: SearchQuery,
        *,
        encoder=None,
        title_vectors: torch.Tensor | None = None,
        attribute_thresholds: dict[str, torch.Tensor] | None = None,
        max_conversations: int = 1000,
    ) -> None:
        if not generators:
            raise ValueError("the search service needs at least one generator")
        _check_index(index, catalog, embedder)
        generators = {name: g.eval() for name, g in generators.items()}
        default = next(
            (g for g in generators.values() if isinstance(g, ConditionalGenerator)), None
        )
        if encoder is None:
            encoder = (
                configured_text_encoder()
                if default is None
                else text_encoder(default.config.text_encoder, default.config.text_pooling)
            )
        text_vectors = TextVectors(encoder, query.text_cache_size)
        title_vectors = _title_vectors(catalog, title_vectors, text_vectors, query)
        self.catalog = catalog
        self.query = query
        self.attribute_thresholds = attribute_thresholds
        self.max_conversations = max_conversations
        ranker = Ranker(catalog, index, title_vectors, query)
        self.path = QueryPath(generators, embedder.eval(), ranker, text_vectors, query)
        self.conversations = SessionStore(max_conversations)

    def with_query(self, **changes: Any) -> SearchService:
        """Another service over the same models and catalog with some query settings changed
        (validated as the YAML is; benchmarks comparing settings); its conversations start
        empty, and it keeps this one's text cache unless the cache's size changes."""
        query = overridden(self.query, **changes)
        p = self.path
        text_vectors = p.text_vectors
        if query.text_cache_size != self.query.text_cache_size:
            text_vectors = TextVectors(text_vectors.encoder, query.text_cache_size)
        other = object.__new__(SearchService)
        other.__dict__.update(self.__dict__)
        other.query = query
        titles = _title_vectors(self.catalog, self.ranker.title_vectors, text_vectors, query)
        ranker = Ranker(self.catalog, self.ranker.index, titles, query)
        other.path = QueryPath(p.generators, p.embedder, ranker, text_vectors, query)
        other.conversations = SessionStore(self.max_conversations)
        return other

    @property
    def model_names(self) -> list[str]:
        return list(self.path.generators)

    @property
    def default_model(self) -> str:
        return self.path.default_model

    @property
    def encoder(self):
        return self.path.text_vectors.encoder

    @property
    def ranker(self) -> Ranker:
        return self.path.ranker

    def is_conditional(self, model: str) -> bool:
        return isinstance(self.path.generators[model], ConditionalGenerator)

    # --- entry points ------------------------------------------------------------------------
    def search(self, text: Any = None, image: Any = None, **options: Any) -> SearchResult:
        """Answer one query on its own: a turn of a fresh conversation that is not kept.

        Options: ``model``, ``k``, ``n_images``, ``seed``.

        Raises:
            SearchInputError: empty or unreadable query, unreadable image, bad k/n_images/seed,
                unknown model.
        """
        request = check_request(self.query, text, image, **options)
        return self._turn(ConversationSession(), request, None)

    def converse(
        self,
        conversation: str | ConversationSession | None = None,
        text: Any = None,
        image: Any = None,
        **options: Any,
    ) -> SearchResult:
        """One turn of a kept conversation: its id (None: a new one) or the session itself (a
        session file's). Options: ``pick`` (a catalog id that becomes the reference before the
        message), ``model``, ``k``, ``n_images``, ``seed``.

        Raises:
            SearchInputError: as :meth:`search`, and an unknown conversation id or item.
        """
        request = check_request(self.query, text, image, **options)
        session = self.session(conversation)
        with session.lock:
            reference = session.reference
            if request.pick is not None:
                reference = self.catalog_reference(request.pick)
                if request.text is None and request.image is None:
                    return _picked(session, reference, self.default_model)
            return self._turn(session, request, reference)

    def session(self, conversation: str | ConversationSession | None) -> ConversationSession:
        """The kept conversation (a new one for None); an unknown id is a SearchInputError."""
        if isinstance(conversation, ConversationSession):
            return self.conversations.put(conversation)
        if conversation is None or conversation == "":
            return self.conversations.new()
        found = self.conversations.get(conversation)
        if found is None:
            raise SearchInputError(
                f"unknown conversation {conversation!r} (expired or never started): "
                "send the message without a conversation id to start a new one",
                "conversation",
            )
        return found

    def generate(self, text: Any, image: Any = None, **options: Any) -> tuple[torch.Tensor, list]:
        """Images only (the Generate tab): the text as typed, optional reference picture.

        Returns:
            (n, C, H, W) images in [-1, 1] and notices.
        """
        if check_text(text, self.query.max_text_chars) is None:
            raise SearchInputError(
                f"Type a caption (e.g. '{EXAMPLE_QUERY}'); a reference picture alone is not "
                "enough to generate.",
                "text",
            )
        request = check_request(self.query, text, image, **options)
        name, generator = self.path.generator(request.model)
        notices = self.path.notices(request, name)
        if not isinstance(generator, ConditionalGenerator):
            notices.append(f"'{name}' is unconditional: its samples ignore the query.")
            return generate(generator, request.n_images, request.seed), notices
        upload = self.path.upload(request, name)
        picture = None if upload is None else upload.image
        try:  # the caption encoded under the encoder's lock, as a search turn encodes it
            features = self.path.caption_features(name, request.text)
            images = generate(
                generator, request.n_images, request.seed, request.text, picture, features
            )
        except GenerationError as err:
            raise SearchInputError(str(err)) from err
        return images, notices

    def compare(self, text: Any, image: Any = None, **options: Any) -> dict[str, SearchResult]:
        """The same query on every model (unconditional ones just sample)."""
        return {name: self.search(text, image, model=name, **options) for name in self.model_names}

    # --- one turn ----------------------------------------------------------------------------
    def _turn(
        self, session: ConversationSession, request: SearchRequest, reference: Reference | None
    ) -> SearchResult:
        started = time.perf_counter()
        plan = self.plan(request, reference)
        mark = time.perf_counter()
        images = self.path.draw(plan)
        timings = {**plan.timings_ms, "generate": _ms_since(mark)}
        pictures = images if images is not None else _reference_picture(plan)
        ranking, vector = Ranking([]), self.path.blank_query(plan)
        if pictures is not None:
            mark = time.perf_counter()
            vector = self.path.embed(pictures)
            timings["embed"] = _ms_since(mark)
        if vector is not None:
            mark = time.perf_counter()
            ranking = self.path.rank(plan, vector)
            timings["search"] = _ms_since(mark)
        timings["total"] = _ms_since(started)
        return self.record(session, plan, images, ranking, timings)

    def plan(self, request: SearchRequest, reference: Reference | None) -> QueryPlan:
        """What a turn will draw and rank for, from the checked request and the reference."""
        mark = time.perf_counter()
        name, generator = self.path.generator(request.model)
        notices = self.path.notices(request, name)
        reference = self.path.upload(request, name) or reference
        timings = {"input": _ms_since(mark)}
        if not isinstance(generator, ConditionalGenerator):
            notices.append(f"'{name}' is unconditional: its samples ignore the query.")
            return QueryPlan(request, name, None, reference, None, tuple(notices), timings)
        if request.text is None:  # query by example
            return QueryPlan(request, name, None, reference, None, tuple(notices), timings)
        mark = time.perf_counter()
        message = self.path.read(request.text, reference is not None, request.image is not None)
        if message.kind == MODIFY and reference is not None:
            reference = self.complete(reference)
        turn = self.path.plan_turn(message, request.text, reference)
        timings["intent"] = _ms_since(mark)
        notices += _reading_notices(message.intent)
        return QueryPlan(request, name, turn, reference, message.intent, tuple(notices), timings)

    def record(
        self,
        session: ConversationSession,
        plan: QueryPlan,
        images: torch.Tensor | None,
        ranking: Ranking,
        timings: dict[str, float],
    ) -> SearchResult:
        """The turn's result; the session advances to the reference the turn leaves."""
        turn = plan.turn
        before = plan.reference
        after = before
        if turn is not None and images is not None:
            caption = turn.caption or turn.generator_text
            after = Reference("generated", images[:1], dict(turn.slots), caption=caption)
        elif turn is not None and turn.generator_text is None:
            after = None  # a bare "start over": nothing to search
        session.advance(Turn(after, summary(plan.request.text, turn, ranking.hits)))
        info = {
            "id": session.id,
            "turn": len(session.turns),
            "decision": "picture" if turn is None else turn.decision,
            "reason": "searched with the picture" if turn is None else turn.reason,
            "reference": None if before is None else before.to_dict(),
            "wanted": None if turn is None else _wanted(turn),
        }
        request = plan.request
        return SearchResult(
            plan.model, request.text, request.image is not None, plan.intent,
            None if turn is None else turn.generator_text, images, ranking.hits, plan.notices,
            timings, info, None if before is None else before.image, ranking.scores,
        )  # fmt: skip

    # --- references --------------------------------------------------------------------------
    def measure(self, image: torch.Tensor, label: int | None) -> dict[str, int | None]:
        """Tone, fit and pattern of a (1, C, H, W) picture of class ``label`` (None: unknown)."""
        return measure_picture(image, label, self.attribute_thresholds, self.catalog)

    def guess_label(self, image: torch.Tensor, k: int = 10) -> int | None:
        """The most common class among the picture's nearest catalog items (None if unknown)."""
        hits = self.ranker.rank(self.path.embed(image), None, Wanted(), k).hits
        labels = [hit["label"] for hit in hits if hit["label"] >= 0]
        return max(set(labels), key=labels.count) if labels else None

    def catalog_reference(self, item: str | int) -> Reference:
        """A catalog item (id, or row number) as the reference: "use this as reference"."""
        table = self.catalog.table
        row = self.catalog.row_of(item)
        if row is None:
            raise SearchInputError(
                f"no catalog item {item!r} (ids look like {table.at[0, 'id']})", "reference_id"
            )
        if self.catalog.thumbnails is None:
            raise SearchInputError("this catalog has no pictures to use as a reference")
        image = from_uint8(self.catalog.thumbnails[row : row + 1])
        label = int(table.at[row, "label"])
        slots = self.measure(image, label if label >= 0 else None)
        return Reference(
            "catalog", image, slots, str(table.at[row, "id"]), row, str(table.at[row, "title"])
        )

    def complete(self, reference: Reference) -> Reference:
        """The reference with its unknown class (nearest items) and attributes (measured)."""
        slots = dict(reference.slots)
        if slots["label"] is None:
            slots["label"] = self.guess_label(reference.image)
        measured = self.measure(reference.image, slots["label"])
        slots.update({k: v for k, v in measured.items() if slots.get(k) is None})
        return replace(reference, slots=slots)


def measure_picture(
    image: torch.Tensor,
    label: int | None,
    thresholds: dict[str, torch.Tensor] | None,
    catalog: Catalog,
) -> dict[str, int | None]:
    """Tone, fit and pattern of a (1, C, H, W) picture of class ``label``, measured at the
    catalog's thumbnail size (all None without a class or cut points)."""
    unknown = {"label": label, "tone": None, "fit": None, "pattern": None}
    if label is None or label < 0 or thresholds is None:
        return unknown
    size = catalog.thumbnails.shape[-1] if catalog.thumbnails is not None else 28
    gray = fit_images(image.float(), size, 1).clamp(-1, 1)
    values = assign(gray, torch.tensor([label]), thresholds)
    return {"label": label, **{name: int(v[0]) for name, v in values.items()}}


def _check_index(index, catalog: Catalog, embedder: torch.nn.Module) -> None:
    if int(index.ntotal) != len(catalog):
        raise ValueError(
            f"the index holds {index.ntotal} vectors but the catalog {len(catalog)} items: "
            "rebuild the index (kedro run --pipelines=search_index)"
        )
    if int(index.d) != int(embedder.config.dim):
        raise ValueError(
            f"the index holds {index.d}-d vectors but the embedder makes "
            f"{embedder.config.dim}-d ones: rebuild the index with this embedder"
        )


def _title_vectors(
    catalog: Catalog, given: torch.Tensor | None, text_vectors: TextVectors, query: SearchQuery
) -> torch.Tensor | None:
    """The titles' text vectors the fused ranking needs: ``given`` when it fits the catalog,
    else encoded now (None when the ranking does not fuse text)."""
    if given is not None and len(given) == len(catalog):
        return given
    if not query.fuse_text:
        return None
    return text_vectors.encode(catalog.table["title"].astype(str).tolist())


def _picked(session: ConversationSession, reference: Reference, model: str) -> SearchResult:
    """A pick without a message: only the reference changes, so nothing is drawn or ranked
    (the shopper says what to change next)."""
    session.advance(Turn(reference, {"pick": reference.item_id}))
    info = {"id": session.id, "turn": len(session.turns), "decision": "pick",
            "reason": f"picked {reference.describe()}",
            "reference": reference.to_dict(), "wanted": None}  # fmt: skip
    return SearchResult(
        model, None, False, None, None, None, [], conversation=info,
        reference_image=reference.image,
    )  # fmt: skip


def _reference_picture(plan: QueryPlan) -> torch.Tensor | None:
    """What a turn that draws nothing embeds: the uploaded picture (query by example)."""
    if plan.turn is None and plan.reference is not None:
        return plan.reference.image
    return None


def _wanted(turn) -> dict[str, Any]:
    excluded = {slot: sorted(values) for slot, values in turn.excluded.items()}
    return {**turn.slots, "caption": turn.caption, "excluded": excluded}


def _reading_notices(intent: Intent | None) -> list[str]:
    """What the reading could not use: words not understood, items the catalog lacks."""
    if intent is None:
        return []
    notices = []
    outside = getattr(intent, "outside", ())
    if outside:
        items = ", ".join(outside)
        notices.append(f"This catalog carries no {items}: showing the closest items.")
    unknown = getattr(intent, "unknown", ())
    if unknown:
        notices.append("Not understood: " + ", ".join(f"'{w}'" for w in unknown) + ".")
    return notices


def _ms_since(mark: float) -> float:
    return (time.perf_counter() - mark) * 1000.0
