"""A shopping conversation: the current reference and what each message does to it.

One :class:`Conversation` per shopper, kept by the service (:class:`ConversationStore`, keyed by
its id) for the app and the JSON API, or written to a session file by ``fashiongan search
--session``. Each turn (:func:`plan_turn`) reads the message (:func:`~fashiongan.search.intent.
read_message`):

- a new description ("a dark wide coat") or "start over, …" forgets the reference and draws the
  described item;
- a modification ("darker", "but as a dress", "wider, with a pattern") starts from the reference's
  class, tone, fit and pattern (the caption it was drawn from, or, for a picked catalog item or an
  upload, what :mod:`fashiongan.attributes` measures on it), applies the change and draws the
  updated caption (``search_app.query.modify_generates: caption``) or the reference picture with
  the typed text (``composed``);
- a modification with no reference is never drawn as a description: it is refused in one line,
  unless it names a class ("as a dress"), which then starts afresh.

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
NOTHING_TO_CHANGE = (
    "There is nothing to change yet: describe an item first (e.g. 'a dark ankle boot'), or pick "
    "a result or upload a picture to start from."
)


@dataclass
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


@dataclass
class Conversation:
    """One shopper's state: the current reference and a summary of each turn."""

    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    reference: Reference | None = None
    turns: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, the reference picture as a base64 PNG (the session file's content)."""
        return {
            "conversation_id": self.id,
            "reference": None if self.reference is None else self.reference.to_dict(True),
            "turns": self.turns,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Conversation:
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


class ConversationStore:
    """Conversations by id, the least recently used dropped beyond ``max_size`` (thread-safe)."""

    def __init__(self, max_size: int = 1000) -> None:
        self.max_size = max_size
        self._items: OrderedDict[str, Conversation] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def new(self) -> Conversation:
        return self.put(Conversation())

    def put(self, conversation: Conversation) -> Conversation:
        with self._lock:
            self._items[conversation.id] = conversation
            self._items.move_to_end(conversation.id)
            while len(self._items) > self.max_size:
                self._items.popitem(last=False)
        return conversation

    def get(self, conversation_id: str | None) -> Conversation | None:
        """The conversation, or None for an unknown (or expired) id."""
        with self._lock:
            found = self._items.get(str(conversation_id)) if conversation_id else None
            if found is not None:
                self._items.move_to_end(found.id)
            return found


@dataclass(frozen=True)
class TurnPlan:
    """What one text message makes the service do.

    Attributes:
        decision: ``new``, ``modify`` or ``start over``; ``reason`` says why, to the shopper.
        slots: the wanted item after this turn (class, tone, fit, pattern; None = any).
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

    @property
    def caption(self) -> str | None:
        return caption_of(self.slots)


def caption_of(slots: dict[str, int | None]) -> str | None:
    """The slots in the caption grammar ("a dark wide coat"), or None without a class."""
    return Intent(slots["label"], slots["tone"], slots["fit"], slots["pattern"]).caption()


def plan_turn(
    message: Message,
    text: str,
    reference: Reference | None,
    modify_generates: str,
    use_intent_caption: bool = True,
) -> TurnPlan:
    """The plan for one text message given the current reference (see the module docstring).

    Raises:
        ValueError: a modification with no reference and no class (:data:`NOTHING_TO_CHANGE`).
    """
    intent = message.intent
    named = {slot: getattr(intent, slot) for slot in SLOTS}
    if message.kind == MODIFY and reference is None:
        if intent.label is None:
            raise ValueError(NOTHING_TO_CHANGE)
        message = Message(NEW, intent, {}, message.reason + ": read as a new description")
    if message.kind in (NEW, RESET):
        caption = intent.caption() if use_intent_caption else None
        drawn = caption or (text if message.kind == NEW or message.changes_something else None)
        return TurnPlan(message.kind, message.reason, named, drawn, None, caption or drawn)
    slots = modified_slots(reference.slots, named, message.steps)
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
    )


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


def summary(turn: int, text: str | None, plan: TurnPlan | None, hits: list[dict]) -> dict:
    """What a session file keeps of a turn."""
    return {
        "turn": turn,
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
