"""Conversations in the service: what each message does to the reference, and the session file."""

from __future__ import annotations

import json

import pytest
import torch

from fashiongan.attributes import measure
from fashiongan.search.contract import SearchInputError
from fashiongan.search.conversation import (
    ConversationSession,
    Reference,
    SessionStore,
    modified_slots,
    plan_turn,
)
from fashiongan.search.intent import MODIFY, NEW, RESET, Intent, Message


def _intensity(service, hits) -> float:
    pixels = service.catalog.thumbnails[[hit["row"] for hit in hits]]
    return float(measure(pixels)["intensity"].mean())


def test_darker_then_a_picked_item_as_a_dress(conversation_service):
    """The issue's conversation at the service level (the browser test runs it in the app)."""
    service = conversation_service
    first = service.converse(None, "a coat")
    conversation = first.conversation["id"]
    assert first.conversation["decision"] == "new" and first.conversation["reference"] is None
    assert {hit["category"] for hit in first.hits} == {"Coat"}
    darker = service.converse(conversation, "darker")
    assert darker.conversation["decision"] == "modify"
    assert darker.conversation["reference"]["kind"] == "generated"
    assert darker.conversation["wanted"]["tone"] == 0 and darker.generator_text.startswith("a dark")
    assert _intensity(service, darker.hits) < _intensity(service, first.hits)
    third = darker.hits[2]["id"]
    picked = service.converse(conversation, pick=third)
    assert picked.conversation["decision"] == "pick" and not picked.hits
    dress = service.converse(conversation, "as a dress")
    assert dress.conversation["reference"]["item_id"] == third
    assert dress.conversation["wanted"]["label"] == 3
    assert {hit["category"] for hit in dress.hits} == {"Dress"}
    assert third not in [hit["id"] for hit in dress.hits]  # the reference itself never returns
    turns = service.conversations.get(conversation).turns
    assert [turn.get("decision") for turn in turns] == ["new", "modify", None, "modify"]


def test_a_new_description_and_start_over_forget_the_reference(conversation_service):
    service = conversation_service
    conversation = service.converse(None, "a light bag").conversation["id"]
    fresh = service.converse(conversation, "a dark sandal")
    assert fresh.conversation["decision"] == "new" and fresh.generator_text == "a dark sandal"
    reset = service.converse(conversation, "start over")
    assert reset.conversation["decision"] == "start over" and reset.hits == []
    assert service.conversations.get(conversation).reference is None
    wider = service.converse(conversation, "wider")  # nothing to change: wide items, any class
    assert wider.conversation["decision"] == "new" and wider.conversation["wanted"]["fit"] == 2
    again = service.converse(conversation, "start over, a light coat")
    assert again.generator_text == "a light coat" and again.hits


def test_a_description_sent_with_a_picture_keeps_the_picture_as_reference(conversation_service):
    """'a dark coat' with an upload changes the upload (it used to be drawn from the text alone)."""
    service = conversation_service
    picture = service.catalog.thumbnails[0]  # (C, H, W) uint8, as an upload would arrive
    image = picture.permute(1, 2, 0).squeeze(-1).numpy()
    from PIL import Image

    result = service.converse(None, "a dark coat", Image.fromarray(image))
    assert result.conversation["decision"] == "modify"
    assert result.conversation["reference"]["kind"] == "upload"
    assert result.conversation["wanted"]["label"] == 4 and result.hits


def test_unknown_conversation_and_item_are_one_line_errors(conversation_service):
    with pytest.raises(SearchInputError, match="unknown conversation 'nope'"):
        conversation_service.converse("nope", "darker")
    with pytest.raises(SearchInputError, match="no catalog item 'item-999'"):
        conversation_service.converse(None, "darker", pick="item-999")


def test_a_session_round_trips_through_json(conversation_service):
    service = conversation_service
    result = service.converse(None, "a coat", pick="item-004")
    state = service.conversations.get(result.conversation["id"])
    copy = ConversationSession.from_dict(json.loads(json.dumps(state.to_dict())))
    assert copy.id == state.id and copy.turns == state.turns
    assert copy.reference.kind == "generated" and copy.reference.slots == state.reference.slots
    assert torch.allclose(copy.reference.image, state.reference.image, atol=1 / 127)
    with pytest.raises(ValueError, match="not a search session"):
        ConversationSession.from_dict({"reference": None})


def test_the_store_drops_the_least_recently_used():
    store = SessionStore(max_size=2)
    first, second = store.new(), store.new()
    assert store.get(first.id) is first  # first is now the most recent
    store.new()
    assert len(store) == 2 and store.get(second.id) is None and store.get(first.id) is first


@pytest.mark.parametrize(
    ("base", "named", "steps", "expected"),
    [
        ({"label": 4, "tone": 1, "fit": 2, "pattern": 0}, {}, {"tone": -1}, (4, 0, 2, 0)),
        ({"label": 4, "tone": 0, "fit": 2, "pattern": 0}, {}, {"tone": -1}, (4, 0, 2, 0)),
        ({"label": 4, "tone": None, "fit": 1, "pattern": 0}, {}, {"tone": 1}, (4, 2, 1, 0)),
        ({"label": 4, "tone": 1, "fit": 0, "pattern": 0}, {"label": 3}, {"fit": 2}, (3, 1, 2, 0)),
        ({"label": 4, "tone": 1, "fit": 0, "pattern": 0}, {"pattern": 1}, {}, (4, 1, 0, 1)),
    ],
)
def test_modified_slots(base, named, steps, expected):
    slots = modified_slots(base, {**dict.fromkeys(base), **named}, steps)
    assert tuple(slots.values()) == expected


def test_plan_draws_the_changed_caption_or_the_composed_query():
    reference = Reference("catalog", torch.zeros(1, 1, 28, 28), {"label": 4, "tone": 1,
                          "fit": 1, "pattern": 0}, "item-004", 4, "a coat")  # fmt: skip
    darker = Message(MODIFY, Intent(), {"tone": -1}, "'darker' changes the reference")
    plan = plan_turn(darker, "darker", reference, "caption", True)
    assert plan.generator_text == "a dark regular-fit plain coat" and plan.exclude_row == 4
    assert plan.generator_reference is None and plan.query_text == plan.generator_text
    composed = plan_turn(darker, "darker", reference, "composed", True)
    assert composed.generator_text == "darker" and composed.generator_reference is not None
    nothing = plan_turn(darker, "darker", None, "caption", True)
    assert nothing.decision == "new" and nothing.slots["tone"] == 0 and nothing.exclude_row is None
    bare = plan_turn(
        Message(RESET, Intent(), {}, "start over"), "start over", reference, "caption", True
    )
    assert bare.generator_text is None
    new = plan_turn(Message(NEW, Intent(label=8), {}, "a bag"), "a bag", reference, "caption", True)
    assert new.generator_text == "a bag" and new.exclude_row is None
