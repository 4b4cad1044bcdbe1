"""Catalogue product titles for Fashion-MNIST items, with realistic noise, and their tokenisation.

A title is built from the caption grammar's vocabulary (:mod:`fashiongan.text.captions`: class
nouns and tone/fit/pattern words) plus catalogue filler, e.g. ``"Kestrel | dark slim pullover -
wool blend, size M"``. Real listings are not clean labels, so each title's *class word* goes
through exactly one of these outcomes (rates in the ``noise`` dict, the rest is ``clean``):

- ``misleading`` (default 0.15): the class word is a synonym of a *different*, uniformly drawn
  class (a mis-categorised or mis-titled listing: "sneaker" on a sandal).
- ``dropped`` (``drop_class_word``, default 0.20): no class word at all (brand, attributes and
  filler only: "Aurelle dark patterned - new season").
- ``shared`` (``shared_word``, default 0.25): a word several related classes share
  (:data:`SHARED_WORDS`: "top" for t-shirts, pullovers, coats and shirts; "shoe" for sandals,
  sneakers and ankle boots; "garment", "item", ...), drawn among those that fit the class.
- ``clean``: one of the class's own synonyms (first entry of ``CLASS_SYNONYMS`` is canonical).

Independently of that, each attribute word (tone, fit, pattern) is left out with probability
``attribute_drop``; a brand name appears with probability ``brand``, and each of up to two filler
phrases (material, marketing, size) with probability ``filler``. Brands, filler and attributes are
drawn independently of the class (attributes are per-class tertiles, so equally frequent in every
class), so they carry no class information: only the class word does, and it is right in
``clean`` titles only. A text-only classifier therefore cannot beat roughly
``clean + shared·(1/group size) + dropped·(1/10)`` accuracy, while the image settles most titles
the text cannot.

Tokenisation for the LSTM is a plain word vocabulary built on the training titles
(:func:`build_vocabulary`): ``<pad>`` = 0, ``<unk>`` = 1, then words by frequency.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Mapping, Sequence

import torch

from fashiongan.text.captions import CLASS_SYNONYMS, FIT_WORDS, PATTERN_WORDS, TONE_WORDS

#: Words a catalogue uses for several related classes → the classes they fit.
SHARED_WORDS: dict[str, tuple[int, ...]] = {
    "top": (0, 2, 4, 6),
    "layer": (2, 4, 6),
    "knit": (0, 2, 3),
    "garment": (0, 1, 2, 3, 4, 6),
    "apparel": (0, 1, 2, 3, 4, 6),
    "shoe": (5, 7, 9),
    "footwear": (5, 7, 9),
    "item": tuple(range(10)),
}

#: Invented brand-like names (none is a word of the grammar).
BRANDS = (
    "Kestrel",
    "Aurelle",
    "Nordhaven",
    "Mossgrove",
    "Teodor",
    "Brisa",
    "Hallward",
    "Lumen & Co",
    "Velda",
    "Oakmere",
    "Sorrel",
    "Ivo Marek",
)
#: Class-independent catalogue filler: materials, marketing words, sizes.
FILLER = (
    "cotton",
    "organic cotton",
    "wool blend",
    "recycled polyester",
    "linen look",
    "new season",
    "bestseller",
    "limited edition",
    "classic",
    "essential",
    "online exclusive",
    "free returns",
    "size S",
    "size M",
    "size L",
    "one size",
)
_SEPARATORS = (" | ", " - ", ", ", " ")

#: The rates used when a key is missing from ``noise``.
DEFAULT_NOISE: dict[str, float] = {
    "misleading": 0.15,
    "drop_class_word": 0.20,
    "shared_word": 0.25,
    "attribute_drop": 0.3,
    "brand": 0.7,
    "filler": 0.5,
}
NOISE_KINDS = ("clean", "shared", "dropped", "misleading")

PAD, UNK = "<pad>", "<unk>"
_TOKEN = re.compile(r"[a-z0-9]+(?:[-'&][a-z0-9]+)*|&")


def check_noise(noise: Mapping[str, float] | None) -> dict[str, float]:
    """``DEFAULT_NOISE`` updated by ``noise``, validated.

    Raises:
        ValueError: on an unknown key, a rate outside [0, 1], or class-word outcome rates
            (misleading + drop_class_word + shared_word) summing above 1.
    """
    merged = dict(DEFAULT_NOISE)
    unknown = set(noise or {}) - set(DEFAULT_NOISE)
    if unknown:
        raise ValueError(f"unknown title noise keys {sorted(unknown)}; expected {list(merged)}")
    merged.update({k: float(v) for k, v in (noise or {}).items()})
    for key, rate in merged.items():
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"title noise rate {key!r} must be in [0, 1], got {rate}")
    outcome = merged["misleading"] + merged["drop_class_word"] + merged["shared_word"]
    if outcome > 1.0 + 1e-9:
        raise ValueError(
            "misleading + drop_class_word + shared_word are exclusive outcomes for the class "
            f"word and must sum to <= 1, got {outcome:.3f}"
        )
    return merged


def _check_label(label: int) -> int:
    label = int(label)
    if label not in CLASS_SYNONYMS:
        raise ValueError(f"label must be one of {sorted(CLASS_SYNONYMS)}, got {label}")
    return label


def _class_word(label: int, rng: random.Random, noise: Mapping[str, float]) -> tuple[str, str]:
    """(word, outcome): the class word after noise; '' when dropped."""
    draw = rng.random()
    if draw < noise["misleading"]:
        wrong = rng.choice([c for c in CLASS_SYNONYMS if c != label])
        return rng.choice(CLASS_SYNONYMS[wrong]), "misleading"
    draw -= noise["misleading"]
    if draw < noise["drop_class_word"]:
        return "", "dropped"
    draw -= noise["drop_class_word"]
    if draw < noise["shared_word"]:
        return rng.choice([w for w, classes in SHARED_WORDS.items() if label in classes]), "shared"
    return rng.choice(CLASS_SYNONYMS[label]), "clean"


def draw_title(
    label: int,
    attrs: Mapping[str, int | None],
    rng: random.Random,
    noise: Mapping[str, float] | None = None,
) -> tuple[str, str]:
    """A title and the outcome of its class word (one of :data:`NOISE_KINDS`).

    Args:
        label: Fashion-MNIST class (0-9).
        attrs: ``tone`` (0-2), ``fit`` (0-2), ``pattern`` (0-1); a missing/None one is not used.
        rng: the source of every random choice (same state → same title).
        noise: rates (see the module docstring); missing keys take :data:`DEFAULT_NOISE`.
    """
    label = _check_label(label)
    rates = check_noise(noise)
    word, outcome = _class_word(label, rng, rates)
    adjectives = [
        rng.choice(table[int(attrs[name])])
        for name, table in (("tone", TONE_WORDS), ("fit", FIT_WORDS), ("pattern", PATTERN_WORDS))
        if attrs.get(name) is not None and rng.random() >= rates["attribute_drop"]
    ]
    core = " ".join([*adjectives, word]).strip()
    extras = rng.sample(FILLER, sum(rng.random() < rates["filler"] for _ in range(2)))
    parts = [core] if core else []
    if rng.random() < rates["brand"]:
        brand = rng.choice(BRANDS)
        if rng.random() < 0.7:
            parts.insert(0, brand)
        else:
            parts.append(brand)
    parts += extras
    if not parts:  # nothing survived: a listing still shows something
        parts = [rng.choice(FILLER)]
    return rng.choice(_SEPARATORS).join(parts), outcome


def make_title(
    label: int,
    attrs: Mapping[str, int | None],
    rng: random.Random,
    noise: Mapping[str, float] | None = None,
) -> str:
    """One noisy catalogue title for an item (see :func:`draw_title`)."""
    return draw_title(label, attrs, rng, noise)[0]


def build_titles(
    labels: torch.Tensor | Sequence[int],
    attributes: Mapping[str, torch.Tensor | Sequence[int]],
    seed: int,
    noise: Mapping[str, float] | None = None,
) -> tuple[list[str], list[str]]:
    """Titles for a whole split.

    Args:
        labels: (N,) classes.
        attributes: ``tone``, ``fit``, ``pattern`` (N,) each, as from ``attributes.assign``.
        seed: same seed → same titles.
        noise: rates, see the module docstring.

    Returns:
        ``(titles, outcomes)``, N each; an outcome is one of :data:`NOISE_KINDS`.
    """
    labels = [int(v) for v in labels]
    columns = {}
    for name in ("tone", "fit", "pattern"):
        if name not in attributes:
            raise KeyError(f"attributes lack '{name}' (expected tone, fit, pattern)")
        columns[name] = [int(v) for v in attributes[name]]
        if len(columns[name]) != len(labels):
            raise ValueError(f"{len(labels)} labels but {len(columns[name])} '{name}' values")
    rates = check_noise(noise)
    rng = random.Random(seed)
    drawn = [
        draw_title(label, {"tone": tone, "fit": fit, "pattern": pattern}, rng, rates)
        for label, tone, fit, pattern in zip(
            labels, columns["tone"], columns["fit"], columns["pattern"], strict=True
        )
    ]
    return [title for title, _ in drawn], [outcome for _, outcome in drawn]


def tokenize(title: str) -> list[str]:
    """Lower-cased words: ``"Lumen & Co | slim T-shirt"`` → ``['lumen', '&', 'co', 'slim', 't-shirt']``."""
    if not isinstance(title, str):
        raise TypeError(f"title must be a str, got {type(title).__name__}")
    return _TOKEN.findall(title.lower())


def build_vocabulary(titles: Sequence[str], min_count: int = 1) -> dict[str, int]:
    """Word → id from the (training) titles: ``<pad>`` 0, ``<unk>`` 1, then by frequency.

    Ties are broken alphabetically, so the same titles always give the same ids.
    """
    if min_count < 1:
        raise ValueError(f"min_count must be >= 1, got {min_count}")
    counts = Counter(token for title in titles for token in tokenize(title))
    words = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
    return {PAD: 0, UNK: 1, **{word: index for index, word in enumerate(words, start=2)}}


def encode_titles(
    titles: Sequence[str], vocabulary: Mapping[str, int], max_len: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids (N, max_len) int64, right-padded with 0 and truncated, and lengths (N,) ≥ 1.

    Unknown words map to ``<unk>``; an empty title becomes a single ``<unk>``.
    """
    if max_len < 1:
        raise ValueError(f"max_len must be >= 1, got {max_len}")
    if vocabulary.get(PAD) != 0 or vocabulary.get(UNK) != 1:
        raise ValueError("vocabulary must map '<pad>' to 0 and '<unk>' to 1 (build_vocabulary)")
    ids = torch.zeros(len(titles), max_len, dtype=torch.int64)
    lengths = torch.ones(len(titles), dtype=torch.int64)
    for row, title in enumerate(titles):
        tokens = [vocabulary.get(t, 1) for t in tokenize(title)][:max_len] or [1]
        ids[row, : len(tokens)] = torch.tensor(tokens)
        lengths[row] = len(tokens)
    return ids, lengths
