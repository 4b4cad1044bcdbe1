"""Shoppers' own words: typos, shop words, implied items, negation with its scope, no-class items."""

from __future__ import annotations

import pytest

from fashiongan.config import load_parameters, overridden
from fashiongan.generation import text_encoder
from fashiongan.search.query import shopper_reader
from fashiongan.search.reading import ShopperDetector


@pytest.fixture(scope="module")
def multilingual() -> ShopperDetector:
    """The reader conf/base configures (multilingual on)."""
    return shopper_reader(text_encoder("bundled", "mean"), load_parameters()["search_app"].query)


@pytest.fixture(scope="module")
def reader() -> ShopperDetector:
    """The same reader, English only (``reading_encoder: minilm``)."""
    query = overridden(load_parameters()["search_app"].query, reading_encoder="minilm")
    return shopper_reader(text_encoder("bundled", "mean"), query)


@pytest.mark.parametrize(
    ("text", "label"),
    [("hanbag", 8), ("pulover", 2), ("sandels", 5), ("sneekers", 7), ("ankel boots", 9),
     ("t shirt", 0), ("tshirt", 0), ("a jumper", 2), ("chinos", 1), ("coats", 4),
     ("dresses", 3), ("a navy pull over", 2), ("tee shrit", 0), ("a shirt dress", 3),
     ("a dress shirt", 6), ("a cream roll neck", 2), ("white hi tops", 7), ("a holdall", 8),
     ("chukkas", 9)],
)  # fmt: skip
def test_typos_and_shop_words_read_as_their_class(reader, multilingual, text, label):
    for intent in (reader.detect(text), multilingual.detect(text)):
        assert intent.label == label, (text, intent)
        assert intent.keywords and intent.unknown == ()


@pytest.mark.parametrize(
    ("text", "label"),
    [("something to keep my feet dry", 9), ("something I can wear to the gym", 7),
     ("something to carry my laptop", 8), ("an outfit for a wedding", 3)],
)  # fmt: skip
def test_implied_items_read_as_their_class_in_either_reading(multilingual, reader, text, label):
    for intent in (multilingual.detect(text), reader.detect(text)):
        assert intent.label == label, (text, intent)
        (said,) = intent.keywords  # the use, as typed, with the encoder's similarity
        assert said.name == intent.class_name and said.score is not None and intent.unknown == ()


def test_words_that_imply_the_item_named_are_understood(multilingual, reader):
    assert multilingual.detect("trainers for the gym").unknown == ()
    assert reader.detect("trainers for the gym").unknown == ()
    assert multilingual.detect("a fancy coat").unknown == ("fancy",)  # implies no item


@pytest.mark.parametrize(
    ("text", "outside"), [("a bracelet", "jewellery"), ("a lanyard", "accessories")]
)
def test_items_the_vocabulary_lacks_are_read_as_not_carried(multilingual, text, outside):
    intent = multilingual.detect(text)
    assert intent.label is None and intent.outside == (outside,) and intent.readable


def test_an_adjective_is_not_read_from_a_plural_noun(multilingual):
    intent = multilingual.detect("black tights")  # hosiery, not a slim fit
    assert intent.label is None and intent.fit is None and intent.outside == ("tights",)


def test_a_correctly_spelt_word_is_not_read_as_a_typo(reader):
    intent = reader.detect("something with short sleeves")  # "short" is not "shorts"
    assert intent.outside == () and intent.label == 0  # short sleeves imply a top


@pytest.mark.parametrize(
    ("text", "label", "excluded"),
    [
        ("a dress, anything but black", 3, {"tone": {0}}),
        ("not a sneaker, a sandal", 5, {"class": {7}}),
        ("a jumper, no stripes", 2, {"pattern": {1}}),
        ("not too baggy trousers", 1, {"fit": {2}}),
        ("nothing tight", None, {"fit": {0}}),
        ("a dress that is not dark", 3, {"tone": {0}}),
        ("instead of a pullover, show me coats", 4, {"class": {2}}),
        ("t-shirt, neither black nor white", 0, {"tone": {0, 2}}),
        ("trainers that don't have a pattern", 7, {"pattern": {1}}),
    ],
)
def test_negation_excludes_with_its_scope_and_never_asks_for_it(reader, text, label, excluded):
    intent = reader.detect(text)
    assert intent.label == label
    assert {slot: set(values) for slot, values in intent.excluded.items()} == excluded
    for slot, values in excluded.items():
        assert getattr(intent, "label" if slot == "class" else slot) not in values
    assert "dark" not in (intent.caption() or "") or "tone" not in excluded


@pytest.mark.parametrize(
    ("text", "outside"),
    [("a swimsuit for the beach", "swimsuit"), ("a jumpsuit for a wedding", "jumpsuit"),
     ("fluffy dressing gown", "dressinggown")],
)  # fmt: skip
def test_items_the_catalog_lacks_have_no_class_and_are_said(reader, text, outside):
    intent = reader.detect(text)
    assert intent.label is None and intent.outside == (outside,) and intent.readable


def test_unreadable_words_are_reported(reader):
    intent = reader.detect("xqzw blorft")
    assert not intent.readable and intent.unknown == ("xqzw", "blorft")
    half = reader.detect("a fancy coat")
    assert half.label == 4 and half.unknown == ("fancy",)


def test_the_grammar_reads_as_before(reader):
    intent = reader.detect("a dark wide patterned pullover")
    assert (intent.label, intent.tone, intent.fit, intent.pattern) == (2, 0, 2, 1)
    assert intent.caption() == "a dark wide patterned pullover" and not intent.excluded


@pytest.mark.parametrize(
    ("text", "label", "tone", "word"),
    [("une veste", 4, None, "veste"), ("une robe noire", 3, 0, "robe"),
     ("ein Mantel", 4, None, "mantel"), ("unos pantalones", 1, None, "pantalones"),
     ("una chaqueta oscura", 4, 0, "chaqueta"), ("un abrigo", 4, None, "abrigo"),
     ("eine Lederjacke", 4, None, "lederjacke"), ("una maglietta bianca", 0, 2, "maglietta")],
)  # fmt: skip
def test_listed_foreign_shop_words_are_read_with_their_articles(
    multilingual, text, label, tone, word
):
    intent = multilingual.detect(text)
    assert (intent.label, intent.tone) == (label, tone), (text, intent)
    said = next(k for k in intent.keywords if k.slot == "class")
    assert word in said.phrase.split() and said.phrase.split()[0] == text.lower().split()[0]
    assert said.name == intent.class_name and said.score == 1.0 and intent.unknown == ()
    assert said.describe() == f"{said.phrase} → {intent.class_name} (1.00)"


def test_unlisted_foreign_words_are_read_by_the_encoder(multilingual):
    intent = multilingual.detect("un trench-coat")  # not a listed word: the encoder's nearest
    (said,) = intent.keywords
    assert intent.label == 4 and said.score is not None and 0.55 <= said.score < 1, intent


@pytest.mark.parametrize(
    ("text", "label", "excluded"),
    [("un pull sans rayures", 2, {"pattern": {1}}), ("eine Jacke, nicht schwarz", 4, {"tone": {0}}),
     ("vestido no negro", 3, {"tone": {0}}), ("pas de rayures", None, {"pattern": {1}}),
     ("sandalias, pero que no sean negras", 5, {"tone": {0}}),
     ("een trui zonder print", 2, {"pattern": {1}})],
)  # fmt: skip
def test_foreign_negation_excludes_and_never_asks_for_it(multilingual, text, label, excluded):
    intent = multilingual.detect(text)
    assert intent.label == label, intent
    assert {slot: set(values) for slot, values in intent.excluded.items()} == excluded
    assert intent.tone is None and intent.pattern is None


def test_without_the_multilingual_encoder_foreign_words_stay_unread(reader):
    intent = reader.detect("une veste")
    assert intent.label is None and not intent.readable and "veste" in intent.unknown


def test_the_multilingual_encoder_leaves_english_readings_alone(reader, multilingual):
    for text in (
        "a jumper, no stripes",
        "a dark wide patterned pullover",
        "a swimsuit",
        "xqzw blorft",
    ):
        assert multilingual.detect(text) == reader.detect(text), text


@pytest.mark.parametrize("text", ["a lanyard", "a handkerchief", "a bucket hat", "suspenders"])
def test_english_words_the_vocabulary_lacks_are_not_read_as_foreign(reader, multilingual, text):
    """Their nearest shop phrase would be a wrong class (suspenders → trousers)."""
    assert reader.detect(text).label is None
    assert multilingual.detect(text).label is None, text


@pytest.mark.parametrize(
    ("text", "label", "pattern"),
    [("a shirt to go with my jeans", 6, None), ("under a cardigan, something with short sleeves", 0, None),
     ("a dress with stripes", 3, 1)],
)  # fmt: skip
def test_an_item_named_as_what_it_goes_with_is_not_the_one_asked(
    multilingual, text, label, pattern
):
    intent = multilingual.detect(text)
    assert (intent.label, intent.pattern) == (label, pattern), intent
    assert intent.unknown == ()


def test_a_misspelt_implied_encoder_names_its_setting():
    query = overridden(load_parameters()["search_app"].query, implied_encoder="bundeld")
    with pytest.raises(FileNotFoundError, match=r"search_app\.query\.implied_encoder 'bundeld'"):
        shopper_reader(text_encoder("bundled", "mean"), query)
