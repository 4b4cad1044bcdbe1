import random
from collections import Counter

import pytest
import torch

from fashiongan.text.captions import CLASS_SYNONYMS
from fashiongan.text.titles import (
    BRANDS,
    DEFAULT_NOISE,
    FILLER,
    SHARED_WORDS,
    build_titles,
    build_vocabulary,
    check_noise,
    draw_title,
    encode_titles,
    make_title,
    tokenize,
)

N = 4000
CLASS_WORDS = {w for words in CLASS_SYNONYMS.values() for w in words} | set(SHARED_WORDS)


def _split(n: int = N, seed: int = 0) -> tuple[list[int], dict[str, list[int]]]:
    rng = random.Random(seed)
    labels = [rng.randrange(10) for _ in range(n)]
    attrs = {
        "tone": [rng.randrange(3) for _ in range(n)],
        "fit": [rng.randrange(3) for _ in range(n)],
        "pattern": [rng.randrange(2) for _ in range(n)],
    }
    return labels, attrs


def _has(title: str, word: str) -> bool:
    return f" {word} " in f" {' '.join(tokenize(title))} "


def test_outcome_rates_match_the_configuration():
    noise = {"misleading": 0.1, "drop_class_word": 0.2, "shared_word": 0.3}
    labels, attrs = _split()
    _, outcomes = build_titles(labels, attrs, seed=1, noise=noise)
    rates = {k: v / N for k, v in Counter(outcomes).items()}
    for kind, expected in (("misleading", 0.1), ("dropped", 0.2), ("shared", 0.3), ("clean", 0.4)):
        assert rates[kind] == pytest.approx(expected, abs=0.025), kind


def test_titles_hold_the_class_word_their_outcome_says():
    labels, attrs = _split(2000)
    titles, outcomes = build_titles(labels, attrs, seed=2)
    for label, title, outcome in zip(labels, titles, outcomes, strict=True):
        own = [w for w in CLASS_SYNONYMS[label] if _has(title, w)]
        others = [w for c, ws in CLASS_SYNONYMS.items() if c != label for w in ws if _has(title, w)]
        shared = [w for w, classes in SHARED_WORDS.items() if _has(title, w)]
        if outcome == "clean":
            assert own, title
        elif outcome == "misleading":
            assert others and not own, title
        elif outcome == "dropped":
            assert not (own or others or shared), title
        else:
            assert shared and all(label in SHARED_WORDS[w] for w in shared), title


def test_filler_and_brands_carry_no_class_word():
    tokens = {t for text in (*FILLER, *BRANDS) for t in tokenize(text)}
    assert not tokens & {t for w in CLASS_WORDS for t in tokenize(w)}


def test_attribute_drop_and_no_noise():
    rng = random.Random(0)
    clean = {k: 0.0 for k in DEFAULT_NOISE}
    attrs = {"tone": 0, "fit": 2, "pattern": 1}
    for _ in range(50):
        title, outcome = draw_title(7, attrs, rng, clean)
        assert outcome == "clean"
        assert tokenize(title)[:2] == ["dark", "wide"] or tokenize(title)[:2] == ["dark", "broad"]
    bare, _ = draw_title(7, attrs, rng, {**clean, "attribute_drop": 1.0})
    assert not {"dark", "wide", "broad", "patterned", "printed"} & set(tokenize(bare))


def test_same_seed_same_titles_and_clear_errors():
    labels, attrs = _split(50)
    assert build_titles(labels, attrs, 3) == build_titles(labels, attrs, 3)
    assert build_titles(labels, attrs, 3)[0] != build_titles(labels, attrs, 4)[0]
    assert isinstance(make_title(0, {"tone": None}, random.Random(0)), str)
    with pytest.raises(ValueError, match="must sum to <= 1"):
        check_noise({"misleading": 0.5, "shared_word": 0.6})
    with pytest.raises(ValueError, match="unknown title noise keys"):
        check_noise({"typos": 0.1})
    with pytest.raises(ValueError, match="label must be one of"):
        make_title(10, {}, random.Random(0))
    with pytest.raises(ValueError, match="3 labels but 2 'fit' values"):
        build_titles([0, 1, 2], {"tone": [0, 0, 0], "fit": [0, 0], "pattern": [0, 0, 0]}, 0)


def test_vocabulary_and_encoding():
    assert tokenize("Lumen & Co | slim T-shirt, size M") == [
        "lumen", "&", "co", "slim", "t-shirt", "size", "m",
    ]  # fmt: skip
    vocab = build_vocabulary(["dark coat", "dark dress", "coat"])
    assert vocab == {"<pad>": 0, "<unk>": 1, "coat": 2, "dark": 3, "dress": 4}
    ids, lengths = encode_titles(["dark coat", "wide dark dress coat", ""], vocab, max_len=3)
    assert ids.tolist() == [[3, 2, 0], [1, 3, 4], [1, 0, 0]]
    assert lengths.tolist() == [2, 3, 1]
    assert ids.dtype == torch.int64
    with pytest.raises(ValueError, match="'<pad>' to 0"):
        encode_titles(["x"], {"x": 0}, 3)
