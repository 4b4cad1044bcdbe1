"""The query service: text and/or a picture → intent → generated image → embedding → top-K items.

One :class:`SearchService` serves every caller (the ``fashiongan search`` CLI, the Gradio app, the
benchmarks). Bad input raises :class:`SearchInputError` with one line that says what is wrong;
the service itself keeps serving. Problems that are not errors (text cut at the tokenizer limit,
an image converted from RGBA) come back as ``notices``.

Every query is a turn of a conversation (:mod:`fashiongan.search.conversation`): ``search`` is a
turn of a fresh one, ``converse`` a turn of a kept one (the app, the JSON API, ``fashiongan search
--session``). Query kinds:
    a description ("a dark ankle boot", "black running trainers"): the detected intent, in the
        caption grammar, is what the conditional generator draws; without a class, the text as
        typed.
    a modification ("darker", "as a dress") of the reference (the last drawing, a picked item or
        an uploaded picture): the reference's class and attributes with the change applied.
    image only: the picture itself is embedded (query by example), nothing is generated.

Ranking (:meth:`SearchService.rank`): the z-scored sum of the generated images' similarity and the
text's similarity to the item titles, the ``fused`` query of
:func:`fashiongan.evaluation.retrieval.query_similarities` (the evaluation measures it above the
image alone for text queries), plus ``class_boost`` for items of the wanted class.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image

from fashiongan.attributes import assign
from fashiongan.config import (
    ConfigError,
    SearchAppParams,
    SearchDatasets,
    SearchQuery,
    parse_block,
)
from fashiongan.errors import one_line
from fashiongan.evaluation.retrieval import query_similarities
from fashiongan.generation import (
    GenerationError,
    generate,
    load_generator,
    text_encoder,
)
from fashiongan.images import ImageInputError, open_image, to_model_input, to_picture
from fashiongan.models.conditional_gan import ConditionalGenerator
from fashiongan.pixels import from_uint8
from fashiongan.search.conversation import (
    SLOTS,
    Conversation,
    ConversationStore,
    Reference,
    TurnPlan,
    plan_turn,
    summary,
)
from fashiongan.search.index import search as index_search
from fashiongan.search.index import stored_vectors
from fashiongan.search.intent import MODIFY, Intent, IntentDetector, read_message

log = logging.getLogger(__name__)

EXAMPLE_QUERY = "a dark ankle boot"
TEXT_CACHE_SIZE = 1024


class SearchInputError(ValueError):
    """A query the service cannot answer; the message is one line meant for the user."""


@dataclass(frozen=True)
class SearchSettings:
    k: int = 10  # catalog items returned
    n_images: int = 4  # generated images per query; their mean embedding is the query vector
    seed: int = 0
    max_k: int = 100
    max_images: int = 16
    max_text_chars: int = 2000  # longer text is cut before tokenizing (and the user told)
    use_intent_caption: bool = True  # text-only queries: draw the detected intent's caption
    class_threshold: float = 0.6
    attribute_threshold: float = 0.6
    # The app's YAML turns these on (search_app.query); off, the drawing alone ranks (what the
    # search_index evaluation measures).
    fuse_text: bool = False  # rank by generated image + text, z-scored (the evaluation's "fused")
    class_boost: float = 0.0  # z-units added to the items of the wanted class
    modify_generates: str = "caption"  # caption | composed (see fashiongan.search.conversation)
    max_words: int = 32

    @classmethod
    def from_params(cls, query: SearchQuery) -> SearchSettings:
        """Settings from the typed ``search_app.query`` block; the limits keep their defaults."""
        return cls(**query.model_dump())


@dataclass
class Catalog:
    """The searchable items: one table row per index row, and their pictures.

    Attributes:
        table: columns ``id``, ``title``, ``category``, ``label`` (-1 = unknown) and ``image``
            (path of the original picture, "" for Fashion-MNIST).
        thumbnails: (N, C, H, W) uint8 pictures at model resolution, or None.
    """

    table: pd.DataFrame
    thumbnails: torch.Tensor | None = None

    def __post_init__(self) -> None:
        missing = {"id", "title", "category", "label"} - set(self.table.columns)
        if missing:
            raise ValueError(f"catalog table lacks columns {sorted(missing)}")
        self.table = self.table.reset_index(drop=True)
        if self.thumbnails is not None and len(self.thumbnails) != len(self.table):
            raise ValueError(
                f"{len(self.table)} catalog rows but {len(self.thumbnails)} thumbnails"
            )

    def __len__(self) -> int:
        return len(self.table)

    def image(self, row: int, scale: int = 4) -> Image.Image | None:
        """The item's picture: the original file when there is one, else the thumbnail ×scale."""
        path = str(self.table.at[row, "image"]) if "image" in self.table.columns else ""
        if path and Path(path).is_file():
            try:
                return open_image(path).convert("RGB")
            except ImageInputError:
                log.warning("catalog image %s is unreadable; showing the thumbnail", path)
        if self.thumbnails is None:
            return None
        return to_picture(self.thumbnails[row].permute(1, 2, 0).numpy(), scale)  # (H, W, C)


@dataclass
class SearchResult:
    """Everything one query produced; :meth:`to_dict` is the JSON the CLI prints."""

    model: str
    text: str | None
    had_image: bool
    intent: Intent | None
    generator_text: str | None
    images: torch.Tensor | None  # (n, C, H, W) in [-1, 1]: what was generated
    hits: list[dict[str, Any]]
    notices: list[str] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    conversation: dict[str, Any] | None = None  # id, turn, decision, reason, reference, wanted
    reference_image: torch.Tensor | None = None  # (1, C, H, W): what this turn started from

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
            "notices": self.notices,
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
            "conversation": self.conversation,
        }


def _fit_images(images: torch.Tensor, size: int, channels: int) -> torch.Tensor:
    """Resize/convert (B, C, H, W) images to what the embedder takes."""
    if images.shape[1] != channels:
        images = images.mean(1, keepdim=True) if channels == 1 else images.expand(-1, 3, -1, -1)
    if images.shape[-1] != size or images.shape[-2] != size:
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    return images


class SearchService:
    """Answers queries against one catalog with one embedder and one or more generators.

    Args:
        generators: name → generator; the first conditional one is the default.
        embedder: ``ImageEmbedder`` (images in [-1, 1] → unit vectors).
        index: a faiss index over the catalog vectors (row i = catalog row i).
        catalog: the items.
        settings: defaults and limits.
        encoder: the sentence encoder for intent detection; default: the one the default
            generator was trained with (shared with generation, loaded once per process).
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
        settings: SearchSettings | None = None,
        encoder=None,
        attribute_thresholds: dict[str, torch.Tensor] | None = None,
        max_conversations: int = 1000,
    ) -> None:
        if not generators:
            raise ValueError("the search service needs at least one generator")
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
        self.generators = {name: g.eval() for name, g in generators.items()}
        self.embedder = embedder.eval()
        self.index = index
        self.catalog = catalog
        self.settings = settings or SearchSettings()
        conditional = [n for n, g in self.generators.items() if isinstance(g, ConditionalGenerator)]
        self.default_model = conditional[0] if conditional else next(iter(self.generators))
        if encoder is None:
            config = getattr(self.generators[self.default_model].config, "text_encoder", "bundled")
            pooling = getattr(self.generators[self.default_model].config, "text_pooling", "mean")
            encoder = text_encoder(config, pooling)
        self.encoder = encoder
        s = self.settings
        self.detector = IntentDetector(
            encoder, s.class_threshold, s.attribute_threshold, max_words=s.max_words
        )
        self.attribute_thresholds = attribute_thresholds
        self.conversations = ConversationStore(max_conversations)
        self.title_vectors: torch.Tensor | None = None  # (N, text_dim), computed when first needed
        self._text_cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._labels = torch.tensor(catalog.table["label"].to_numpy(dtype=np.int64))
        # One query at a time: HF tokenizers and faiss are not safe to share between threads,
        # and on a CPU a query already uses every core.
        self._lock = threading.RLock()

    @property
    def model_names(self) -> list[str]:
        return list(self.generators)

    def is_conditional(self, model: str) -> bool:
        return isinstance(self.generators[model], ConditionalGenerator)

    # --- input checks --------------------------------------------------------------------------
    def _check_text(self, text: str | None, notices: list[str]) -> str | None:
        if text is None:
            return None
        if not isinstance(text, str):
            raise SearchInputError(f"the query text must be a string, got {type(text).__name__}")
        text = " ".join(text.split())
        if not text:
            return None
        limit = self.settings.max_text_chars
        if len(text) > limit:
            text = text[:limit]
            notices.append(f"Your text was over {limit} characters; only the start was read.")
        n_tokens = int(self.encoder.tokenize([text]).n_tokens[0])
        if n_tokens > self.encoder.max_length:
            notices.append(
                f"Your text is {n_tokens} tokens long; the text encoder reads the first "
                f"{self.encoder.max_length}, the rest was ignored."
            )
        return text

    def _check_image(self, image, size: int, channels: int, notices: list[str]) -> torch.Tensor:
        try:
            picture = open_image(image)
            mode = picture.mode
            tensor = to_model_input(picture, size, channels)
        except ImageInputError as err:
            raise SearchInputError(str(err)) from err
        except (OSError, ValueError) as err:  # a decoder failing late
            raise SearchInputError(f"the image could not be read ({type(err).__name__})") from err
        target = "L" if channels == 1 else "RGB"
        if mode != target:
            notices.append(f"Your {mode} image was converted to {target}.")
        return tensor

    def _check_counts(self, k: int | None, n_images: int | None) -> tuple[int, int]:
        s = self.settings
        k = s.k if k is None else int(k)
        n_images = s.n_images if n_images is None else int(n_images)
        if not 1 <= k <= s.max_k:
            raise SearchInputError(f"k must be between 1 and {s.max_k}, got {k}")
        if not 1 <= n_images <= s.max_images:
            raise SearchInputError(f"n_images must be between 1 and {s.max_images}, got {n_images}")
        return k, n_images

    def _generator(self, model: str | None) -> tuple[str, torch.nn.Module]:
        name = model or self.default_model
        if name not in self.generators:
            raise SearchInputError(f"unknown model {name!r}; available: {self.model_names}")
        return name, self.generators[name]

    # --- the steps -----------------------------------------------------------------------------
    @torch.no_grad()
    def embed(self, images: torch.Tensor) -> np.ndarray:
        """(B, C, H, W) in [-1, 1] → (1, dim) unit query vector (mean of the B embeddings)."""
        c = self.embedder.config
        vectors = self.embedder(_fit_images(images.float(), c.image_size, c.channels))
        return F.normalize(vectors.mean(0, keepdim=True), dim=1).numpy()

    @functools.cached_property
    def catalog_vectors(self) -> torch.Tensor:
        """(N, dim) the catalog's unit image vectors, read back from the index."""
        return torch.from_numpy(stored_vectors(self.index))

    def titles_vectors(self) -> torch.Tensor:
        """(N, text_dim) text vectors of the catalog titles (encoded once, or set by the loader)."""
        if self.title_vectors is None:
            titles = self.catalog.table["title"].astype(str).tolist()
            _, embeddings, index = self.encoder.encode_unique(titles)
            self.title_vectors = embeddings[index]
        return self.title_vectors

    def lookup(self, query: np.ndarray, k: int) -> list[dict[str, Any]]:
        """Top-k catalog items for one query vector, with their cosine scores (the index)."""
        scores, rows = index_search(self.index, query, k)
        return self._hits(scores[0].tolist(), rows[0].tolist())

    def rank(
        self,
        query: np.ndarray,
        text: str | None,
        label: int | None,
        k: int,
        exclude_row: int | None = None,
    ) -> list[dict[str, Any]]:
        """Top-k items for a (1, dim) query vector (:meth:`embed`) by :meth:`scores`; with
        neither text fusion nor a class boost nor an excluded row, the faiss index answers
        (approximate on big catalogs)."""
        sims = self.scores(query, text, label, exclude_row)
        if sims is None:
            return self.lookup(query, k)
        scores, rows = sims.topk(min(k, len(sims) - (exclude_row is not None)))
        return self._hits(scores.tolist(), rows.tolist())

    def scores(
        self, query: np.ndarray, text: str | None, label: int | None, exclude_row: int | None
    ) -> torch.Tensor | None:
        """(N,) ranking scores of every item, or None when the plain cosine (the index) ranks.

        Fused: the z-scored sum of the query's cosine to each item's picture and the text's
        cosine to each item's title (the evaluation's ``fused``), N · dim work per query; then
        ``class_boost`` is added to the items of class ``label``; ``exclude_row`` never ranks.
        """
        fuse = self.settings.fuse_text and bool(text)
        boost = self.settings.class_boost if label is not None else 0.0
        if not fuse and not boost and exclude_row is None:
            return None
        query_vector = torch.from_numpy(query)
        if fuse:
            text_vector = self.text_vector(text)
            sims = query_similarities(
                "text", text_vector, query_vector, self.catalog_vectors, self.titles_vectors(), []
            )["fused"][0]
        else:
            sims = (query_vector @ self.catalog_vectors.T)[0]
        if boost:
            sims = sims + boost * (self._labels == label).float()
        if exclude_row is not None:
            sims[exclude_row] = -torch.inf
        return sims

    def _hits(self, scores: list[float], rows: list[int]) -> list[dict[str, Any]]:
        table = self.catalog.table
        hits = []
        for score, row in zip(scores, rows, strict=True):
            if row < 0:
                continue
            hits.append(
                {
                    "rank": len(hits) + 1,
                    "row": int(row),
                    "id": str(table.at[row, "id"]),
                    "title": str(table.at[row, "title"]),
                    "category": str(table.at[row, "category"]),
                    "label": int(table.at[row, "label"]),
                    "score": round(float(score), 4),
                }
            )
        return hits

    # --- references ----------------------------------------------------------------------------
    def measure(self, image: torch.Tensor, label: int | None) -> dict[str, int | None]:
        """Tone, fit and pattern of a (1, C, H, W) picture of class ``label`` (None: unknown)."""
        unknown = {"label": label, "tone": None, "fit": None, "pattern": None}
        if label is None or label < 0 or self.attribute_thresholds is None:
            return unknown
        size = self.catalog.thumbnails.shape[-1] if self.catalog.thumbnails is not None else 28
        gray = _fit_images(image.float(), size, 1).clamp(-1, 1)
        values = assign(gray, torch.tensor([label]), self.attribute_thresholds)
        return {"label": label, **{name: int(v[0]) for name, v in values.items()}}

    def guess_label(self, image: torch.Tensor, k: int = 10) -> int | None:
        """The most common class among the picture's nearest catalog items (None if unknown)."""
        labels = [hit["label"] for hit in self.lookup(self.embed(image), k) if hit["label"] >= 0]
        return max(set(labels), key=labels.count) if labels else None

    def catalog_reference(self, item: str | int) -> Reference:
        """A catalog item (id, or row number) as the reference: "use this as reference"."""
        table = self.catalog.table
        rows = table.index[table["id"].astype(str) == str(item)].tolist()
        if not rows and isinstance(item, int | np.integer) and 0 <= int(item) < len(table):
            rows = [int(item)]
        if not rows:
            raise SearchInputError(f"no catalog item {item!r} (ids look like {table.at[0, 'id']})")
        if self.catalog.thumbnails is None:
            raise SearchInputError("this catalog has no pictures to use as a reference")
        row = rows[0]
        image = from_uint8(self.catalog.thumbnails[row : row + 1])
        label = int(table.at[row, "label"])
        slots = self.measure(image, label if label >= 0 else None)
        return Reference(
            "catalog", image, slots, str(table.at[row, "id"]), row, str(table.at[row, "title"])
        )

    def _complete(self, reference: Reference) -> Reference:
        """Fill the reference's unknown class (nearest items) and attributes (measured)."""
        slots = dict(reference.slots)
        if slots["label"] is None:
            slots["label"] = self.guess_label(reference.image)
        measured = self.measure(reference.image, slots["label"])
        slots.update({k: v for k, v in measured.items() if slots.get(k) is None})
        reference.slots = slots
        return reference

    def search(
        self,
        text: str | None = None,
        image: str | Path | bytes | Image.Image | None = None,
        *,
        model: str | None = None,
        k: int | None = None,
        n_images: int | None = None,
        seed: int | None = None,
    ) -> SearchResult:
        """Answer one query on its own: a turn of a fresh conversation that is not kept.

        Raises:
            SearchInputError: empty query, unreadable image, bad k/n_images, unknown model, a
                modification ("darker") with nothing to modify.
        """
        with self._lock:
            return self._turn(Conversation(), text, image, model, k, n_images, seed)

    def converse(
        self,
        conversation: str | Conversation | None = None,
        text: str | None = None,
        image: str | Path | bytes | Image.Image | None = None,
        *,
        pick: str | int | None = None,
        model: str | None = None,
        k: int | None = None,
        n_images: int | None = None,
        seed: int | None = None,
    ) -> SearchResult:
        """One turn of a kept conversation: its id (None: a new one) or the object itself (a
        session file's). ``pick`` (a catalog id) becomes the reference before the message.

        Raises:
            SearchInputError: as :meth:`search`, and an unknown conversation id or item.
        """
        with self._lock:
            state = self.conversation(conversation)
            if pick is not None:
                state.reference = self.catalog_reference(pick)
            if pick is not None and text is None and image is None:
                return self._picked(state)
            return self._turn(state, text, image, model, k, n_images, seed)

    def conversation(self, conversation: str | Conversation | None) -> Conversation:
        """The kept conversation (a new one for None); an unknown id is a SearchInputError."""
        if isinstance(conversation, Conversation):
            return self.conversations.put(conversation)
        if conversation is None or conversation == "":
            return self.conversations.new()
        found = self.conversations.get(conversation)
        if found is None:
            raise SearchInputError(
                f"unknown conversation {conversation!r} (expired or never started): "
                "send the message without a conversation id to start a new one"
            )
        return found

    def _picked(self, state: Conversation) -> SearchResult:
        """A pick without a message: only the reference changes, so nothing is drawn or ranked
        (the shopper says what to change next)."""
        reference = state.reference
        state.turns.append({"turn": len(state.turns) + 1, "pick": reference.item_id})
        info = {"id": state.id, "turn": len(state.turns), "decision": "pick",
                "reason": f"picked {reference.describe()}",
                "reference": reference.to_dict(), "wanted": None}  # fmt: skip
        return SearchResult(
            self.default_model, None, False, None, None, None, [], conversation=info,
            reference_image=reference.image,
        )  # fmt: skip

    def _turn(self, state, text, image, model, k, n_images, seed) -> SearchResult:
        timings: dict[str, float] = {}
        started = time.perf_counter()
        notices: list[str] = []
        name, generator = self._generator(model)
        k, n_images = self._check_counts(k, n_images)
        seed = self.settings.seed if seed is None else int(seed)
        text = self._check_text(text, notices)
        if image is not None:
            c = generator.config if self.is_conditional(name) else self.embedder.config
            picture = self._check_image(image, c.image_size, c.channels, notices)
            state.reference = Reference("upload", picture, dict.fromkeys(SLOTS))
        if text is None and image is None:
            raise SearchInputError(
                f"Type what you are looking for (e.g. '{EXAMPLE_QUERY}') or upload a picture."
            )
        timings["input"] = _ms_since(started)
        result = SearchResult(name, text, image is not None, None, None, None, [], notices)
        result.reference_image = None if state.reference is None else state.reference.image
        if not self.is_conditional(name):
            result.images = generate(generator, n_images, seed)
            notices.append(f"'{name}' is unconditional: its samples ignore the query.")
            plan = None
        elif text is None:  # query by example
            plan = None
        else:
            plan = self._plan(state, text, result, timings, with_picture=image is not None)
            self._draw(generator, plan, n_images, seed, result, timings)
        if result.images is None and plan is not None:
            state.reference = None  # a bare "start over": nothing to search
        else:
            pictures = result.images if result.images is not None else state.reference.image
            mark = time.perf_counter()
            query = self.embed(pictures)
            timings["embed"] = _ms_since(mark)
            mark = time.perf_counter()
            if plan is None:  # query by example, or an unconditional model's samples
                result.hits = self.rank(query, None, None, k)
            else:
                result.hits = self.rank(
                    query, plan.query_text, plan.slots["label"], k, plan.exclude_row
                )
            timings["search"] = _ms_since(mark)
        self._record(state, text, plan, result)
        timings["total"] = _ms_since(started)
        result.timings_ms = timings
        return result

    def _plan(
        self, state: Conversation, text: str, result: SearchResult, timings, with_picture: bool
    ) -> TurnPlan:
        """Read the message and decide what to draw (see :func:`plan_turn`)."""
        mark = time.perf_counter()
        message = read_message(self.detector, text, state.reference is not None, with_picture)
        result.intent = message.intent
        if message.kind == MODIFY and state.reference is not None:
            self._complete(state.reference)
        timings["intent"] = _ms_since(mark)
        s = self.settings
        try:
            return plan_turn(message, text, state.reference, s.modify_generates,
                             s.use_intent_caption)  # fmt: skip
        except ValueError as err:
            raise SearchInputError(str(err)) from err

    def _draw(self, generator, plan: TurnPlan, n_images, seed, result, timings) -> None:
        """Generate what the plan says (nothing for a bare "start over")."""
        mark = time.perf_counter()
        result.generator_text = plan.generator_text
        if plan.generator_text is not None:
            reference = plan.generator_reference
            if reference is not None:
                c = generator.config
                reference = _fit_images(reference, c.image_size, c.channels)
            # the default model's text vector is the ranking's too: encoded once
            draw = self._draw_text if result.model == self.default_model else _generate
            result.images = draw(generator, n_images, seed, plan.generator_text, reference)
        timings["generate"] = _ms_since(mark)

    @torch.no_grad()
    def _draw_text(self, generator, n: int, seed: int, text: str, reference) -> torch.Tensor:
        """``fashiongan.generation.generate`` with the text vector from :meth:`text_vector`,
        which the ranking reuses (the caption is encoded once a turn)."""
        try:
            return generate(generator, n, seed, text, reference, features=self.text_vector(text))
        except GenerationError as err:
            raise SearchInputError(str(err)) from err

    def text_vector(self, text: str) -> torch.Tensor:
        """(1, text_dim) sentence vector of ``text``; the last 1,024 texts are kept (a turn
        draws and ranks with the same caption, and shoppers repeat captions)."""
        text = text.strip()
        with self._lock:
            vector = self._text_cache.get(text)
            if vector is None:
                vector = self.encoder.encode([text])
                self._text_cache[text] = vector
                if len(self._text_cache) > TEXT_CACHE_SIZE:
                    self._text_cache.popitem(last=False)
            else:
                self._text_cache.move_to_end(text)
            return vector

    def _record(self, state: Conversation, text, plan: TurnPlan | None, result) -> None:
        """The conversation after the turn: the new reference and the turn's summary."""
        before = None if state.reference is None else state.reference.to_dict()
        if plan is not None and result.images is not None:
            state.reference = Reference(
                "generated", result.images[:1], dict(plan.slots),
                caption=plan.caption or plan.generator_text,
            )  # fmt: skip
        state.turns.append(summary(len(state.turns) + 1, text, plan, result.hits))
        result.conversation = {
            "id": state.id,
            "turn": len(state.turns),
            "decision": "picture" if plan is None else plan.decision,
            "reason": "searched with the picture" if plan is None else plan.reason,
            "reference": before,
            "wanted": None if plan is None else {**plan.slots, "caption": plan.caption},
        }

    def generate(
        self,
        text: str | None,
        image=None,
        *,
        model: str | None = None,
        n_images: int = 16,
        seed: int | None = None,
    ) -> tuple[torch.Tensor, list[str]]:
        """Images only (the Generate tab): the text as typed, optional reference picture.

        Returns:
            (n, C, H, W) images in [-1, 1] and notices.
        """
        with self._lock:
            notices: list[str] = []
            name, generator = self._generator(model)
            _, n_images = self._check_counts(1, n_images)
            seed = self.settings.seed if seed is None else int(seed)
            text = self._check_text(text, notices)
            if not isinstance(generator, ConditionalGenerator):
                notices.append(f"'{name}' is unconditional: its samples ignore the query.")
                return generate(generator, n_images, seed), notices
            reference = None
            if image is not None:
                c = generator.config
                reference = self._check_image(image, c.image_size, c.channels, notices)
            if text is None:
                raise SearchInputError(
                    f"Type a caption (e.g. '{EXAMPLE_QUERY}'); a reference picture alone is not "
                    "enough to generate."
                )
            try:
                return generate(generator, n_images, seed, text, reference), notices
            except GenerationError as err:
                raise SearchInputError(str(err)) from err

    def compare(
        self, text: str | None, image=None, *, k: int | None = None, seed: int | None = None
    ) -> dict[str, SearchResult]:
        """The same query on every model (unconditional ones just sample)."""
        return {
            name: self.search(text, image, model=name, k=k, seed=seed) for name in self.generators
        }


def _generate(generator, n: int, seed: int, text: str, reference) -> torch.Tensor:
    try:
        return generate(generator, n, seed, text, reference)
    except GenerationError as err:
        raise SearchInputError(str(err)) from err


def _ms_since(mark: float) -> float:
    return (time.perf_counter() - mark) * 1000.0


# --- loading -------------------------------------------------------------------------------------
def load_settings(
    conf_source: str | Path = "conf", env: str | None = None
) -> tuple[SearchAppParams, dict[str, Any]]:
    """The typed ``search_app`` block and the catalog configuration, as ``kedro run`` reads them
    (conf/base merged with conf/local).

    Raises:
        SearchInputError: no ``search_app`` block, or one line naming each bad key in it.
    """
    from kedro.config import OmegaConfigLoader

    from fashiongan.settings import CONFIG_LOADER_ARGS

    loader = OmegaConfigLoader(conf_source=str(conf_source), env=env, **CONFIG_LOADER_ARGS)
    params = loader["parameters"]
    if "search_app" not in params:
        raise SearchInputError(f"no 'search_app' parameters under {conf_source}")
    try:
        settings = parse_block("search_app", params["search_app"])
    except ConfigError as err:
        raise SearchInputError(str(err)) from err
    return settings, loader["catalog"]


def load_service(
    conf_source: str | Path = "conf", env: str | None = None, models: list[str] | None = None
) -> tuple[SearchService, SearchAppParams]:
    """Build the service from the project's catalog entries (run from the project root).

    Missing generators are skipped with a warning as long as one is left; a missing index or
    embedder is a one-line :class:`SearchInputError` saying what to run.

    Returns:
        The service and the ``search_app`` parameters.
    """
    from kedro.io import DataCatalog

    settings, catalog_config = load_settings(conf_source, env)
    catalog = DataCatalog.from_config(catalog_config)
    data = settings.datasets
    generators = _load_generators(catalog, settings.models, models)
    table = _load_output(catalog, data.catalog, data)
    thumbnails = _load_output(catalog, data.thumbnails, data)["images"]
    service = SearchService(
        generators,
        _load_output(catalog, data.embedder, data),
        _load_output(catalog, data.index, data),
        Catalog(table, thumbnails),
        SearchSettings.from_params(settings.query),
        attribute_thresholds=_load_thresholds(catalog, data.attributes),
        max_conversations=settings.max_conversations,
    )
    if service.settings.fuse_text and catalog.exists(data.title_vectors):
        service.title_vectors = catalog.load(data.title_vectors)["vectors"]
        if len(service.title_vectors) != len(table):  # an index rebuilt without its titles
            log.warning("%s does not match the catalog: encoding the titles", data.title_vectors)
            service.title_vectors = None
    return service, settings


def _load_thresholds(catalog, name: str) -> dict[str, torch.Tensor] | None:
    """The attribute cut points, or None (with a warning): references then keep unknown
    attributes, and "darker" from an unknown tone lands on dark."""
    from kedro.io import DatasetError

    try:
        return catalog.load(name) if catalog.exists(name) else None
    except DatasetError as err:
        log.warning("attribute thresholds %s unreadable (%s): not measuring", name, one_line(err))
        return None


def _load_output(catalog, name: str, data: SearchDatasets) -> Any:
    """A dataset the service needs, or a one-line error saying what to run to make it."""
    from kedro.io import DatasetError

    if not catalog.exists(name):
        producer = (
            "train the conditional GAN first (make train)"
            if name == data.embedder
            else "build the index first (kedro run --pipelines=search_index)"
        )
        raise SearchInputError(f"{name} does not exist yet: {producer}")
    try:
        return catalog.load(name)
    except DatasetError as err:
        raise SearchInputError(one_line(err)) from err


def _load_generators(
    catalog, available: dict[str, str], wanted: list[str] | None
) -> dict[str, torch.nn.Module]:
    """The generators named in ``search_app.models`` (only ``wanted`` ones when given); a wanted
    registry URI (``models:/fashiongan-conditional@champion``) or model folder/file is loaded
    from there, under that name."""
    from kedro.io import DatasetError

    located = [w for w in wanted or () if is_model_location(w)]
    unknown = sorted(set(wanted or ()) - set(available) - set(located))
    if unknown:
        raise SearchInputError(
            f"unknown model {unknown[0]!r}; available: {list(available)}, a model folder or a "
            "registry URI (models:/fashiongan-conditional@champion)"
        )
    generators = {location: _generator_at(location) for location in located}
    for name, dataset in available.items():
        if wanted and name not in wanted:
            continue
        try:
            generators[name] = catalog.load(dataset)
        except DatasetError as err:
            log.warning("model %s (%s) skipped: %s", name, dataset, one_line(err))
    if not generators:
        raise SearchInputError(
            f"no generator found among {list(available.values())}: train one first (make train)"
        )
    return generators


def is_model_location(model: str) -> bool:
    """A registry URI or a path, rather than a name under ``search_app.models``."""
    return model.startswith("models:/") or "/" in model or model.endswith(".safetensors")


def _generator_at(location: str) -> torch.nn.Module:
    """The generator of a ``models:/`` URI (:func:`fashiongan.registry.resolve_model_dir`), a
    model folder (its generator.safetensors) or a generator file."""
    from fashiongan.registry import resolve_model_dir

    try:
        folder = resolve_model_dir(location)
    except ValueError as err:  # ModelNotFoundError: names what exists
        raise SearchInputError(one_line(err)) from err
    path = folder if folder.suffix == ".safetensors" else folder / "generator.safetensors"
    try:
        return load_generator(path)
    except GenerationError as err:
        raise SearchInputError(str(err)) from err
