"""Shoppers' own words: typos, shop words, implied items, negation with its scope, no-class items."""

from __future__ import annotations

import pytest

from fashiongan.generation import text_encoder
from fashiongan.search.intent import IntentDetector
from fashiongan.search.reading import ShopperDetector


@pytest.fixture(scope="module")
def reader() -> ShopperDetector:
    return ShopperDetector(IntentDetector(text_encoder("bundled", "mean"), 0.6, 0.6), 80)


@pytest.mark.parametrize(
    ("text", "label"),
    [("hanbag", 8), ("pulover", 2), ("sandels", 5), ("sneekers", 7), ("ankel boots", 9),
     ("t shirt", 0), ("tshirt", 0), ("a jumper", 2), ("a mac for the rain", 4), ("chinos", 1),
     ("something to keep my feet dry", 9), ("something I can wear to the gym", 7)],
)  # fmt: skip
def test_typos_shop_words_and_implied_items_read_as_their_class(reader, text, label):
    intent = reader.detect(text)
    assert intent.label == label, (text, intent)
    assert intent.keywords and intent.unknown == ()


@pytest.mark.parametrize(
    ("text", "label", "excluded"),
    [
        ("a dress, anything but black", 3, {"tone": {0}}),
        ("not a sneaker, a sandal", 5, {"class": {7}}),
        ("a jumper, no stripes", 2, {"pattern": {1}}),
        ("not too baggy trousers", 1, {"fit": {2}}),
        ("nothing tight", None, {"fit": {0}}),
        ("a dress that is not dark", 3, {"tone": {0}}),
    ],
)
def test_negation_excludes_with_its_scope_and_never_asks_for_it(reader, text, label, excluded):
    intent = reader.detect(text)
    assert intent.label == label
    assert {slot: set(values) for slot, values in intent.excluded.items()} == excluded
    for slot, values in excluded.items():
        assert getattr(intent, "label" if slot == "class" else slot) not in values
    assert "dark" not in (intent.caption() or "") or "tone" not in excluded


def test_items_the_catalog_lacks_have_no_class_and_are_said(reader):
    intent = reader.detect("a swimsuit for the beach")
    assert intent.label is None and intent.outside == ("swimsuit",) and intent.readable


def test_unreadable_words_are_reported(reader):
    intent = reader.detect("xqzw blorft")
    assert not intent.readable and intent.unknown == ("xqzw", "blorft")
    half = reader.detect("a fancy coat")
    assert half.label == 4 and half.unknown == ("fancy",)


def test_the_grammar_reads_as_before(reader):
    intent = reader.detect("a dark wide patterned pullover")
    assert (intent.label, intent.tone, intent.fit, intent.pattern) == (2, 0, 2, 1)
    assert intent.caption() == "a dark wide patterned pullover" and not intent.excluded
