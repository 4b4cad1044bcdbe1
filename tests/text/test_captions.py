import itertools
import random

import pytest
import torch

from fashiongan.text.captions import (
    CLASS_SYNONYMS,
    build_captions,
    caption,
    modification_text,
    parse_caption,
)

ALL_ITEMS = list(itertools.product(range(10), range(3), range(3), range(2)))


def test_synonyms_canonical_names_first():
    assert sorted(CLASS_SYNONYMS) == list(range(10))
    expected = {
        0: ("t-shirt", "tee", "top"),
        1: ("trousers", "pants", "slacks"),
        2: ("pullover", "sweater", "jumper"),
        4: ("coat", "jacket"),
        6: ("shirt", "blouse"),
        7: ("sneaker", "trainer", "running shoe"),
        8: ("bag", "handbag"),
        9: ("ankle boot", "boot"),
    }
    for label, words in expected.items():
        assert CLASS_SYNONYMS[label][: len(words)] == words
    assert CLASS_SYNONYMS[3][0] == "dress" and CLASS_SYNONYMS[5][0] == "sandal"


def test_caption_is_deterministic_for_the_rng():
    first = [caption(*item, random.Random(7)) for item in ALL_ITEMS]
    again = [caption(*item, random.Random(7)) for item in ALL_ITEMS]
    other = [caption(*item, random.Random(8)) for item in ALL_ITEMS]
    assert first == again
    assert sum(a != b for a, b in zip(first, other, strict=True)) > len(ALL_ITEMS) // 2


def test_captions_vary_in_wording_and_use_every_synonym():
    rng = random.Random(0)
    texts = [caption(2, 0, 2, 1, rng) for _ in range(300)]
    assert len(set(texts)) > 50
    assert any(t.startswith("looking for ") for t in texts)
    assert any(", " in t and not t.endswith("please") for t in texts)  # "slim trousers, plain"
    assert any(t.startswith(("do you have", "show me", "I want")) for t in texts)
    assert any(t.endswith("?") for t in texts) and any("in a dark" in t for t in texts)
    for label, nouns in CLASS_SYNONYMS.items():
        rng = random.Random(label)
        texts = [caption(label, None, None, None, rng) for _ in range(200)]
        for noun in nouns:
            assert any(noun in t for t in texts), (label, noun)


def test_articles_and_plurals():
    texts = {caption(9, None, None, None, random.Random(s)) for s in range(200)}
    assert any("an ankle boot" in t for t in texts)
    assert not any("a ankle" in t for t in texts)
    texts = {caption(1, 0, None, None, random.Random(s)) for s in range(200)}
    plural = ("trousers", "pants", "slacks")
    assert not any(f"a {noun}" in t or f"a dark {noun}" in t for t in texts for noun in plural)
    assert any("a pair of" in t for t in texts) and any(t.startswith("dark ") for t in texts)


@pytest.mark.parametrize("item", ALL_ITEMS)
def test_parse_round_trip_of_full_captions(item):
    rng = random.Random(sum(item))
    for _ in range(10):
        text = caption(*item, rng)
        parsed = parse_caption(text)
        assert (parsed["label"], parsed["tone"], parsed["fit"], parsed["pattern"]) == item, text


def test_dropped_and_excluded_attributes_are_absent():
    rng = random.Random(1)
    for label, tone, fit, pattern in ALL_ITEMS:
        text = caption(label, tone, fit, pattern, rng, include=("fit",))
        assert parse_caption(text) == {"label": label, "tone": None, "fit": fit, "pattern": None}
    counts = {"tone": 0, "fit": 0, "pattern": 0}
    for label, tone, fit, pattern in ALL_ITEMS * 5:
        parsed = parse_caption(caption(label, tone, fit, pattern, rng, drop_prob=0.5))
        assert parsed["label"] == label
        for name, value in (("tone", tone), ("fit", fit), ("pattern", pattern)):
            assert parsed[name] in (None, value)
            counts[name] += parsed[name] is None
    for name, dropped in counts.items():  # about half of 900
        assert 300 < dropped < 600, (name, dropped)


def test_bad_caption_arguments_are_named():
    rng = random.Random(0)
    with pytest.raises(ValueError, match="label"):
        caption(10, 0, 0, 0, rng)
    with pytest.raises(ValueError, match="tone"):
        caption(0, 3, 0, 0, rng)
    with pytest.raises(ValueError, match="include"):
        caption(0, 0, 0, 0, rng, include=("colour",))


def _attributes(n: int, seed: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 10, (n,), generator=g)
    return labels, {
        "tone": torch.randint(0, 3, (n,), generator=g),
        "fit": torch.randint(0, 3, (n,), generator=g),
        "pattern": torch.randint(0, 2, (n,), generator=g),
    }


#: One caption an item, conf/base's drop chance and wordings per meaning.
PLAIN = {"per_item": 1, "drop_prob": 0.25, "phrasings_per_key": 16}
EACH = {"per_item": 1}


@pytest.mark.parametrize("phrasings_per_key", [None, 4])
def test_build_captions_deterministic_and_faithful(phrasings_per_key):
    labels, attributes = _attributes(500, seed=0)
    kwargs = {"per_item": 2, "drop_prob": 0.25, "phrasings_per_key": phrasings_per_key}
    texts = build_captions(labels, attributes, seed=3, **kwargs)
    assert texts == build_captions(labels, attributes, seed=3, **kwargs)
    assert texts != build_captions(labels, attributes, seed=4, **kwargs)
    assert len(texts) == 1000
    for i, text in enumerate(texts):  # item-major: rows 2i and 2i+1 describe item i
        item = i // 2
        parsed = parse_caption(text)
        assert parsed["label"] == int(labels[item])
        for name in ("tone", "fit", "pattern"):
            assert parsed[name] in (None, int(attributes[name][item])), text


def test_phrasings_per_key_bounds_distinct_captions():
    labels, attributes = _attributes(3000, seed=1)
    pooled = build_captions(labels, attributes, seed=0, **EACH, phrasings_per_key=2, drop_prob=0.0)
    fresh = build_captions(
        labels, attributes, seed=0, **EACH, phrasings_per_key=None, drop_prob=0.0
    )
    assert len(set(pooled)) <= 180 * 2  # 10 x 3 x 3 x 2 meanings
    assert len(set(fresh)) > 3 * len(set(pooled))


def test_build_captions_checks_its_inputs():
    labels, attributes = _attributes(10, seed=2)
    with pytest.raises(ValueError, match="10 labels but 9"):
        build_captions(labels, {**attributes, "fit": attributes["fit"][:9]}, seed=0, **PLAIN)
    with pytest.raises(KeyError, match="pattern"):
        build_captions(
            labels, {"tone": attributes["tone"], "fit": attributes["fit"]}, seed=0, **PLAIN
        )
    with pytest.raises(ValueError, match="per_item"):
        build_captions(labels, attributes, seed=0, **PLAIN | {"per_item": 0})


ITEM = {"label": 2, "tone": 1, "fit": 1, "pattern": 0}


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"tone": 0}, ("darker",)),
        ({"tone": 2}, ("lighter",)),
        ({"fit": 2}, ("wider", "broader")),
        ({"fit": 0}, ("slimmer", "narrower")),
        ({"pattern": 1}, ("pattern", "print")),
        ({"label": 3}, ("as a dress", "as a frock", "form of a dress", "form of a frock")),
        ({"label": 1}, ("trousers", "pants", "slacks")),
    ],
)
def test_modification_names_each_difference(change, words):
    for seed in range(20):
        text = modification_text(ITEM, {**ITEM, **change}, random.Random(seed))
        assert text != "the same"
        assert any(word in text for word in words), text


def test_modification_plain_and_two_steps_and_combinations():
    patterned = {**ITEM, "pattern": 1}
    texts = {modification_text(patterned, ITEM, random.Random(s)) for s in range(30)}
    assert all("plain" in t or "without" in t for t in texts)
    light = {**ITEM, "tone": 2}
    assert all(
        "much darker" in t or "far darker" in t
        for t in (
            modification_text(light, {**ITEM, "tone": 0}, random.Random(s)) for s in range(10)
        )
    )
    target = {"label": 4, "tone": 2, "fit": 1, "pattern": 0}
    texts = [modification_text(ITEM, target, random.Random(s)) for s in range(30)]
    assert all(" and " in t and "lighter" in t and ("coat" in t or "jacket" in t) for t in texts)
    assert len(set(texts)) > 5


def test_modification_same_only_when_nothing_differs():
    rng = random.Random(0)
    assert modification_text(ITEM, dict(ITEM), rng) == "the same"
    assert modification_text(ITEM, {"label": 2}, rng) == "the same"  # missing = keep
    assert modification_text(ITEM, {**ITEM, "tone": None}, rng) == "the same"
    for ref, target in itertools.product(ALL_ITEMS[::7], ALL_ITEMS[::11]):
        ref_d = dict(zip(("label", "tone", "fit", "pattern"), ref, strict=True))
        target_d = dict(zip(("label", "tone", "fit", "pattern"), target, strict=True))
        assert (modification_text(ref_d, target_d, rng) == "the same") == (ref == target)


def test_modification_states_unknown_reference_attributes_plainly():
    text = modification_text({"label": 2}, {"label": 2, "tone": 0}, random.Random(0))
    assert parse_caption(text)["tone"] == 0
    assert "darker" not in text


def test_modification_is_deterministic():
    target = {"label": 0, "tone": 0, "fit": 2, "pattern": 1}
    a = [modification_text(ITEM, target, random.Random(s)) for s in range(10)]
    assert a == [modification_text(ITEM, target, random.Random(s)) for s in range(10)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a dark t-shirt", {"label": 0, "tone": 0}),
        ("Light striped shirts", {"label": 6, "tone": 2}),
        ("looking for running shoes", {"label": 7}),
        ("two ankle boots without a pattern", {"label": 9, "pattern": 0}),
        ("summer dresses with a print", {"label": 3, "pattern": 1}),
        ("a lighter, broader bag", {"label": 8}),  # comparatives are not captions
        ("something nice", {}),
        ("", {}),
    ],
)
def test_parse_caption_keywords(text, expected):
    parsed = parse_caption(text)
    assert parsed == {"label": None, "tone": None, "fit": None, "pattern": None, **expected}


def test_parse_caption_rejects_non_text():
    with pytest.raises(TypeError, match="str"):
        parse_caption(None)
