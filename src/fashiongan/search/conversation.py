"""A shopping conversation: the current reference and what each message does to it.

One :class:`ConversationSession` per shopper, kept by the service (:class:`SessionStore`, keyed
by its id) for the app and the JSON API, or written to a session file by ``fashiongan search
--session``. Each turn (:func:`plan_turn`) reads the message (:func:`~fashiongan.search.intent.
read_message`):

- a new description ("a dark wide coat") or "start over, …" forgets the reference and draws the
  described item;
- a modification ("darker", "but as a dress", "wider, with a pattern") starts from the reference's
  class, tone, fit and pattern (the caption it was drawn from, or, for a picked catalog item or an
  upload, what :mod:`fashiongan.attributes` measures on it), applies the change and draws the
  updated caption (``search_app.query.modify_generates: caption``) or the reference picture with
  the typed text (``composed``);
- a modification with no reference is a new search for what it says ("wider" → wide items);
- excluded values ("not dark", "anything but black") are never asked for.

The reference after a turn is the turn's first generated image; a gallery pick ("use this as
reference") or an upload replaces it.
"""

from __future__ import annotations

import base64
import io
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image

from fashiongan.images import to_picture
from fashiongan.pixels import from_uint8, to_uint8
from fashiongan.search.intent import MODIFY, NEW, RESET, Intent, Message

SLOTS = ("label", "tone", "fit", "pattern")
_LEVELS = {"tone": 3, "fit": 3, "pattern": 2}


@dataclass(frozen=True)
class Reference:
    """What the next modification starts from.

    Attributes:
        kind: ``generated`` (the last turn's drawing), ``catalog`` (a picked item) or ``upload``.
        image: (1, C, H, W) in [-1, 1].
        slots: ``label``, ``tone``, ``fit``, ``pattern`` (None = unknown).
        item_id, row: the catalog item, for ``catalog`` references.
        caption: the caption it was drawn from, or the item's title.
    """

    kind: str
    image: torch.Tensor
    slots: dict[str, int | None]
    item_id: str | None = None
    row: int | None = None
    caption: str | None = None

    def describe(self) -> str:
        """'catalog item fmnist-test-00012 (a dark coat)', 'the last drawing (a coat)', …"""
        if self.kind == "catalog":
            return f"catalog item {self.item_id} ({self.caption})"
        if self.kind == "generated":
            return f"the last generated image ({self.caption})"
        return "your picture"

    def to_dict(self, with_image: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "item_id": self.item_id,
            "row": self.row,
            "caption": self.caption,
            "slots": dict(self.slots),
            "description": self.describe(),
        }
        if with_image:
            out["image_png"] = _png_base64(self.image)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reference:
        slots = {slot: _int_or_none(data.get("slots", {}).get(slot)) for slot in SLOTS}
        return cls(
            kind=str(data["kind"]),
            image=_tensor_from_png(data["image_png"]),
            slots=slots,
            item_id=data.get("item_id"),
            row=_int_or_none(data.get("row")),
            caption=data.get("caption"),
        )


@dataclass(frozen=True)
class Turn:
    """What one turn did, as the session keeps it: the reference it leaves and its summary."""

    reference: Reference | None
    summary: dict[str, Any]


class ConversationSession:
    """One shopper's conversation: it owns the current reference and the turns taken.

    The query path never changes a session: it reads :attr:`reference` and returns a
    :class:`Turn`, which :meth:`advance` records. A lock per session keeps two turns of the same
    shopper in order while other shoppers' turns run beside them.
    """

    def __init__(
        self,
        id: str | None = None,
        reference: Reference | None = None,
        turns: list[dict[str, Any]] | None = None,
    ) -> None:
        self.id = id or uuid.uuid4().hex[:12]
        self._reference = reference
        self._turns = list(turns or [])
        self.lock = threading.Lock()

    @property
    def reference(self) -> Reference | None:
        return self._reference

    @property
    def turns(self) -> list[dict[str, Any]]:
        return list(self._turns)

    def advance(self, turn: Turn) -> None:
        """Record a turn: its reference becomes the session's."""
        self._reference = turn.reference
        self._turns.append({"turn": len(self._turns) + 1, **turn.summary})

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, the reference picture as a base64 PNG (the session file's content)."""
        return {
            "conversation_id": self.id,
            "reference": None if self._reference is None else self._reference.to_dict(True),
            "turns": self.turns,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConversationSession:
        """Read a session file's content back; a malformed one is a ValueError."""
        try:
            reference = data.get("reference")
            return cls(
                id=str(data["conversation_id"]),
                reference=None if reference is None else Reference.from_dict(reference),
                turns=list(data.get("turns", [])),
            )
        except (KeyError, TypeError, AttributeError, ValueError, OSError) as err:
            raise ValueError(
                f"not a search session ({type(err).__name__}: {err})".rstrip(": ")
            ) from None


class SessionStore:
    """Sessions by id, the least recently used dropped beyond ``max_size`` (thread-safe)."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._items: OrderedDict[str, ConversationSession] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def new(self) -> ConversationSession:
        return self.put(ConversationSession())

    def put(self, session: ConversationSession) -> ConversationSession:
        with self._lock:
            self._items[session.id] = session
            self._items.move_to_end(session.id)
            while len(self._items) > self.max_size:
                self._items.popitem(last=False)
        return session

    def get(self, session_id: str | None) -> ConversationSession | None:
        """The session, or None for an unknown (or expired) id."""
        with self._lock:
            found = self._items.get(str(session_id)) if session_id else None
            if found is not None:
                self._items.move_to_end(found.id)
            return found


@dataclass(frozen=True)
class TurnPlan:
    """What one text message makes the service do.

    Attributes:
        decision: ``new``, ``modify`` or ``start over``; ``reason`` says why, to the shopper.
        slots: the wanted item after this turn (class, tone, fit, pattern; None = any).
        excluded: values the shopper does not want, per slot (``{"tone": {0}}`` for "not dark").
        generator_text: what the generator draws (None: nothing to draw, e.g. a bare "start over").
        generator_reference: the reference picture sent with it (composed generation), or None.
        query_text: the text half of the fused ranking (the wanted item's caption).
        exclude_row: a catalog reference, left out of the results.
    """

    decision: str
    reason: str
    slots: dict[str, int | None]
    generator_text: str | None
    generator_reference: torch.Tensor | None
    query_text: str | None
    exclude_row: int | None = None
    excluded: dict[str, frozenset[int]] = field(default_factory=dict)

    @property
    def caption(self) -> str | None:
        return caption_of(self.slots)


def caption_of(slots: dict[str, int | None]) -> str | None:
    """The slots in the caption grammar ("a dark wide coat"), or None without a class."""
    return Intent(slots["label"], slots["tone"], slots["fit"], slots["pattern"]).caption()


def excluded_slots(intent: Intent) -> dict[str, frozenset[int]]:
    """The intent's excluded values keyed by conversation slot (``class`` → ``label``)."""
    excluded = getattr(intent, "excluded", None) or {}
    return {
        ("label" if slot == "class" else slot): frozenset(values)
        for slot, values in excluded.items()
        if values
    }


def plan_turn(
    message: Message,
    text: str,
    reference: Reference | None,
    modify_generates: str,
    use_intent_caption: bool,
) -> TurnPlan:
    """The plan for one text message given the current reference (see the module docstring).

    A modification with nothing to modify ("wider" as a first message) is a new search for what
    it says: its relative steps land at the end of their scale ("wider" → wide, any item).
    """
    excluded = excluded_slots(message.intent)
    if excluded:  # "not a bag": what is drawn and matched must not say the bag
        text = getattr(message.intent, "asked", text)
    named = {slot: getattr(message.intent, slot) for slot in SLOTS}
    if message.kind == MODIFY and reference is None:
        slots = modified_slots(dict.fromkeys(SLOTS), named, message.steps)
        return _new_plan(NEW, message.reason + ": nothing to change yet, so a new search",
                         slots, excluded, text, use_intent_caption)  # fmt: skip
    if message.kind in (NEW, RESET):
        return _new_plan(message.kind, message.reason, named, excluded,
                         text if message.kind == NEW or message.changes_something else None,
                         use_intent_caption)  # fmt: skip
    slots = _without_excluded(modified_slots(reference.slots, named, message.steps), excluded)
    caption = caption_of(slots)
    composed = modify_generates == "composed" or caption is None
    return TurnPlan(
        MODIFY,
        message.reason,
        slots,
        text if composed else caption,
        reference.image if composed else None,
        caption or text,
        reference.row if reference.kind == "catalog" else None,
        excluded,
    )


def _new_plan(decision, reason, slots, excluded, text, use_intent_caption) -> TurnPlan:
    """A plan that forgets the reference: draw the wanted item's caption, else the text as
    typed (None, for a bare "start over": nothing to draw)."""
    slots = _without_excluded(slots, excluded)
    caption = caption_of(slots) if use_intent_caption else None
    drawn = caption or text or None
    return TurnPlan(decision, reason, slots, drawn, None, drawn, None, excluded)


def _without_excluded(
    slots: dict[str, int | None], excluded: dict[str, frozenset[int]]
) -> dict[str, int | None]:
    """The slots with any excluded value cleared: an excluded value is never asked for."""
    return {
        slot: None if value in excluded.get(slot, ()) else value for slot, value in slots.items()
    }


def modified_slots(
    base: dict[str, int | None], named: dict[str, int | None], steps: dict[str, int]
) -> dict[str, int | None]:
    """The reference's slots with the named values set and the relative steps taken.

    A step from an unknown value lands at the end of the scale it points to ("darker" from an
    unknown tone → dark). Attributes are per-class tertiles, so a changed class keeps them.
    """
    slots = dict(base)
    slots.update({slot: value for slot, value in named.items() if value is not None})
    for slot, step in steps.items():
        top = _LEVELS[slot] - 1
        start = base.get(slot)
        slots[slot] = (0 if step < 0 else top) if start is None else min(top, max(0, start + step))
    return slots


def summary(text: str | None, plan: TurnPlan | None, hits: list[dict]) -> dict:
    """What a session file keeps of a turn (the session numbers it)."""
    return {
        "text": text,
        "decision": None if plan is None else plan.decision,
        "caption": None if plan is None else plan.caption,
        "top": [hit["id"] for hit in hits[:3]],
    }


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _png_base64(image: torch.Tensor) -> str:
    """(1, C, H, W) in [-1, 1] → base64 PNG (lossless uint8)."""
    buffer = io.BytesIO()
    to_picture(to_uint8(image)[0].numpy()).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _tensor_from_png(data: str) -> torch.Tensor:
    """base64 PNG → (1, C, H, W) in [-1, 1]."""
    pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(data, validate=True))))
    array = pixels[..., None] if pixels.ndim == 2 else pixels
    return from_uint8(torch.from_numpy(array.copy()).permute(2, 0, 1).unsqueeze(0))
