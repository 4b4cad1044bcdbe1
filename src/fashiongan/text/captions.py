"""Caption grammar: shopper phrases for a Fashion-MNIST item and its tone, fit and pattern.

Captions vary in wording ("a dark wide pullover", "looking for a light patterned dress",
"slim trousers, plain", "do you have a jacket in a pale shade?") so that the text encoder sees the
kind of queries people type, and attributes may be dropped at random so that the conditional
model also learns from partial descriptions. Everything is deterministic for a
``random.Random`` / a seed.

:func:`modification_text` writes the text half of a composed query (reference image + "the same
but darker"), and :func:`parse_caption` reads the keywords back (evaluation and tests).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Mapping, Sequence

import torch

from fashiongan.attributes import FITS, PATTERNS, TONES

ATTRIBUTES = ("tone", "fit", "pattern")

# First entry = canonical name.
CLASS_SYNONYMS: dict[int, tuple[str, ...]] = {
    0: ("t-shirt", "tee", "top"),
    1: ("trousers", "pants", "slacks"),
    2: ("pullover", "sweater", "jumper"),
    3: ("dress", "frock"),
    4: ("coat", "jacket"),
    5: ("sandal",),
    6: ("shirt", "blouse"),
    7: ("sneaker", "trainer", "running shoe"),
    8: ("bag", "handbag"),
    9: ("ankle boot", "boot"),
}
PLURAL_NOUNS = frozenset({"trousers", "pants", "slacks"})

# Adjectives go before the noun, phrases after it; the first word of each is the canonical one.
TONE_WORDS = {0: ("dark",), 1: ("medium-tone", "mid-tone"), 2: ("light", "pale")}
FIT_WORDS = {0: ("slim", "narrow"), 1: ("regular-fit", "regular"), 2: ("wide", "broad")}
PATTERN_WORDS = {0: ("plain", "solid"), 1: ("patterned", "printed")}
TONE_PHRASES = {
    0: ("in a dark tone", "in a dark shade"),
    1: ("in a medium tone", "in a mid tone"),
    2: ("in a light tone", "in a pale shade"),
}
FIT_PHRASES = {
    0: ("with a slim fit", "in a slim cut"),
    1: ("with a regular fit", "in a regular cut"),
    2: ("with a wide fit", "in a wide cut"),
}
PATTERN_PHRASES = {0: ("without a pattern", "with no print"), 1: ("with a pattern", "with a print")}

_WORDS = {"tone": TONE_WORDS, "fit": FIT_WORDS, "pattern": PATTERN_WORDS}
_PHRASES = {"tone": TONE_PHRASES, "fit": FIT_PHRASES, "pattern": PATTERN_PHRASES}
_N_VALUES = {"tone": len(TONES), "fit": len(FITS), "pattern": len(PATTERNS)}

_TEMPLATES = (
    "{np}",
    "{bare}",
    "looking for {np}",
    "I want {np}",
    "show me {np}",
    "searching for {np}",
    "do you have {np}?",
    "{bare}, please",
)
_ADJECTIVE_SHARE = 0.75  # chance that an attribute is an adjective rather than a phrase
_TAIL_SHARE = 0.2  # chance of the "slim trousers, plain" form

# Comparative wording for modification_text: (one step, two steps).
_TONE_CHANGE = {
    "darker": (("darker", "in a darker tone", "a shade darker"), ("much darker", "far darker")),
    "lighter": (("lighter", "in a lighter tone", "a shade lighter"), ("much lighter",)),
}
_FIT_CHANGE = {
    "slimmer": (("slimmer", "narrower", "with a slimmer fit"), ("much slimmer",)),
    "wider": (("wider", "broader", "with a wider fit"), ("much wider",)),
}
_PATTERN_CHANGE = {
    1: ("with a pattern", "patterned", "with a print"),
    0: ("plain", "without the pattern", "without a print"),
}
_CLASS_CHANGE = ("as {np} instead", "as {np}", "in the form of {np}")
_MOD_PREFIXES = ("the same but ", "same but ", "like this but ", "similar but ", "")

# parse_caption patterns. Nouns: a hyphen counts as part of the word, so "t-shirt" is not "shirt".
_NOUN_PATTERNS = sorted(
    (
        (re.compile(rf"(?<![\w-]){re.escape(noun)}(?:s|es)?(?![\w-])"), label, len(noun))
        for label, nouns in CLASS_SYNONYMS.items()
        for noun in nouns
    ),
    key=lambda item: -item[2],
)
_ATTRIBUTE_PATTERNS = {
    "tone": ((0, r"\bdark\b"), (1, r"\b(medium|mid)\b"), (2, r"\b(light|pale)\b")),
    "fit": ((0, r"\b(slim|narrow)\b"), (1, r"\bregular\b"), (2, r"\b(wide|broad)\b")),
    # plain first: "without a pattern" contains "pattern"
    "pattern": (
        (0, r"\b(plain|solid)\b|\b(without|no) (a )?(pattern|print)\b"),
        (1, r"\b(patterned|printed)\b|\bwith (a )?(pattern|print)\b"),
    ),
}


def _check_value(name: str, value: int | None) -> int | None:
    if value is None:
        return None
    value = int(value)
    if not 0 <= value < _N_VALUES[name]:
        raise ValueError(f"{name} must be in [0, {_N_VALUES[name]}) or None, got {value}")
    return value


def _check_label(label: int) -> int:
    label = int(label)
    if label not in CLASS_SYNONYMS:
        raise ValueError(f"label must be one of {sorted(CLASS_SYNONYMS)}, got {label}")
    return label


def _with_article(words: str, noun: str, rng: random.Random) -> str:
    """'a dark coat', 'an ankle boot', 'dark trousers' / 'a pair of dark trousers'."""
    if noun in PLURAL_NOUNS:
        return rng.choice(("", "a pair of ")) + words
    return ("an " if words[0] in "aeiou" else "a ") + words


def caption(
    label: int,
    tone: int | None,
    fit: int | None,
    pattern: int | None,
    rng: random.Random,
    include: Iterable[str] = ATTRIBUTES,
    drop_prob: float = 0.0,
) -> str:
    """One shopper phrase for an item.

    Args:
        label: Fashion-MNIST class (0-9).
        tone: 0 dark, 1 medium, 2 light, or None (not mentioned).
        fit: 0 slim, 1 regular, 2 wide, or None.
        pattern: 0 plain, 1 patterned, or None.
        rng: the source of every random choice (same state → same caption).
        include: the attributes that may be mentioned.
        drop_prob: chance that each included attribute is left out anyway.

    Returns:
        e.g. "looking for a dark wide pullover" or "slim trousers, plain".
    """
    label = _check_label(label)
    unknown = set(include) - set(ATTRIBUTES)
    if unknown:
        raise ValueError(f"include may only hold {ATTRIBUTES}, got {sorted(unknown)}")
    if not 0.0 <= drop_prob <= 1.0:
        raise ValueError(f"drop_prob must be in [0, 1], got {drop_prob}")
    values = {
        "tone": _check_value("tone", tone),
        "fit": _check_value("fit", fit),
        "pattern": _check_value("pattern", pattern),
    }
    kept = [
        name
        for name in ATTRIBUTES
        if rng.random() >= drop_prob and name in include and values[name] is not None
    ]
    rng.shuffle(kept)

    adjectives, phrases = [], []
    for name in kept:
        if rng.random() < _ADJECTIVE_SHARE:
            adjectives.append(rng.choice(_WORDS[name][values[name]]))
        else:
            phrases.append(rng.choice(_PHRASES[name][values[name]]))
    noun = rng.choice(CLASS_SYNONYMS[label])

    if adjectives and not phrases and rng.random() < _TAIL_SHARE:
        # "slim trousers, plain"
        return " ".join([*adjectives[:-1], noun]) + ", " + adjectives[-1]
    bare = " ".join([*adjectives, noun, *([_join(phrases)] if phrases else [])])
    template = rng.choice(_TEMPLATES)
    return template.format(np=_with_article(bare, noun, rng), bare=bare)


def build_captions(
    labels: torch.Tensor | Sequence[int],
    attributes: Mapping[str, torch.Tensor | Sequence[int]],
    seed: int,
    *,
    per_item: int,
    drop_prob: float,
    phrasings_per_key: int | None,
) -> list[str]:
    """Captions for a whole split.

    Each caption first decides which attributes it mentions (each one dropped with
    ``drop_prob``), which gives its meaning: the key (label, tone or None, fit or None, pattern
    or None), at most 10 x 4 x 4 x 3 = 480 keys. It then takes one of ``phrasings_per_key``
    wordings of that key, written once per key. This bounds the distinct captions, hence the
    BERT work, by ``480 * phrasings_per_key`` (7,680 for 16) whatever the dataset size; with
    a fresh wording per caption (``None``), 54,000 training captions are ~44,000 distinct
    ones.

    Args:
        labels: (N,) classes.
        attributes: ``tone``, ``fit``, ``pattern`` (N,) each, as from ``attributes.assign``.
        seed: same seed → same captions.
        per_item: captions per item.
        drop_prob: chance that each attribute is left out of a caption (partial descriptions).
        phrasings_per_key: wordings per meaning, or None for a fresh wording every caption.

    Returns:
        ``N * per_item`` captions, item-major (item 0's captions first).
    """
    if per_item < 1:
        raise ValueError(f"per_item must be >= 1, got {per_item}")
    if phrasings_per_key is not None and phrasings_per_key < 1:
        raise ValueError(f"phrasings_per_key must be >= 1 or None, got {phrasings_per_key}")
    if not 0.0 <= drop_prob <= 1.0:
        raise ValueError(f"drop_prob must be in [0, 1], got {drop_prob}")
    labels = [_check_label(v) for v in labels]
    columns = {}
    for name in ATTRIBUTES:
        if name not in attributes:
            raise KeyError(f"attributes lack '{name}' (expected keys {ATTRIBUTES})")
        columns[name] = [_check_value(name, int(v)) for v in attributes[name]]
        if len(columns[name]) != len(labels):
            raise ValueError(f"{len(labels)} labels but {len(columns[name])} '{name}' values")
    rng = random.Random(seed)
    if phrasings_per_key is None:
        return [
            caption(label, tone, fit, pattern, rng, drop_prob=drop_prob)
            for label, tone, fit, pattern in zip(
                labels, columns["tone"], columns["fit"], columns["pattern"], strict=True
            )
            for _ in range(per_item)
        ]

    pools: dict[tuple[int, int | None, int | None, int | None], list[str]] = {}
    out = []
    for label, *values in zip(
        labels, columns["tone"], columns["fit"], columns["pattern"], strict=True
    ):
        for _ in range(per_item):
            key = (label, *(v if rng.random() >= drop_prob else None for v in values))
            if key not in pools:
                # A key's wordings depend on the seed and the key only, not on the data order.
                key_rng = random.Random(f"{seed}:{key}")
                pools[key] = [caption(*key, key_rng) for _ in range(phrasings_per_key)]
            out.append(pools[key][rng.randrange(phrasings_per_key)])
    return out


def _join(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _value(item: Mapping[str, int | None], name: str) -> int | None:
    value = item.get(name)
    if value is None:
        return None
    return _check_label(value) if name == "label" else _check_value(name, value)


def modification_text(
    ref: Mapping[str, int | None], target: Mapping[str, int | None], rng: random.Random
) -> str:
    """Text that turns the reference item into the target: "the same but darker".

    Args:
        ref: the reference item's ``label``, ``tone``, ``fit``, ``pattern`` (missing/None =
            unknown).
        target: the wanted item, same keys. A key the target lacks is left as it is; one the
            reference lacks is stated plainly ("in a dark tone").
        rng: the source of every random choice.

    Returns:
        e.g. "wider", "the same but with a pattern", "in a lighter tone and as a coat";
        "the same" only when nothing differs.
    """
    parts = []
    ref_tone, new_tone = _value(ref, "tone"), _value(target, "tone")
    if new_tone is not None and new_tone != ref_tone:
        if ref_tone is None:
            parts.append(rng.choice(TONE_PHRASES[new_tone]))
        else:
            steps = _TONE_CHANGE["lighter" if new_tone > ref_tone else "darker"]
            parts.append(rng.choice(steps[abs(new_tone - ref_tone) - 1]))
    ref_fit, new_fit = _value(ref, "fit"), _value(target, "fit")
    if new_fit is not None and new_fit != ref_fit:
        if ref_fit is None:
            parts.append(rng.choice(FIT_PHRASES[new_fit]))
        else:
            steps = _FIT_CHANGE["wider" if new_fit > ref_fit else "slimmer"]
            parts.append(rng.choice(steps[abs(new_fit - ref_fit) - 1]))
    ref_pattern, new_pattern = _value(ref, "pattern"), _value(target, "pattern")
    if new_pattern is not None and new_pattern != ref_pattern:
        parts.append(rng.choice(_PATTERN_CHANGE[new_pattern]))
    ref_label, new_label = _value(ref, "label"), _value(target, "label")
    if new_label is not None and new_label != ref_label:
        noun = rng.choice(CLASS_SYNONYMS[new_label])
        parts.append(rng.choice(_CLASS_CHANGE).format(np=_with_article(noun, noun, rng)))
    if not parts:
        return "the same"
    rng.shuffle(parts)
    return rng.choice(_MOD_PREFIXES) + _join(parts)


def parse_caption(text: str) -> dict[str, int | None]:
    """Exact-keyword reading of a caption (the words this module writes, plurals allowed).

    Args:
        text: a caption or a shopper query.

    Returns:
        ``label``, ``tone``, ``fit``, ``pattern``: the value found, or None. When several
        classes are named, the first one in the text wins; for an attribute, the first value
        in the order plain/patterned, dark/medium/light, slim/regular/wide that matches.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    lowered = text.lower()
    found: dict[str, int | None] = {"label": None, "tone": None, "fit": None, "pattern": None}

    first_at = len(lowered) + 1
    taken: list[tuple[int, int]] = []
    for pattern, label, _ in _NOUN_PATTERNS:  # longest nouns first: "running shoe" before "shoe"
        for match in pattern.finditer(lowered):
            start, end = match.span()
            if any(start < t_end and t_start < end for t_start, t_end in taken):
                continue
            taken.append((start, end))
            if start < first_at:
                first_at, found["label"] = start, label

    for name, options in _ATTRIBUTE_PATTERNS.items():
        for value, regex in options:
            if re.search(regex, lowered):
                found[name] = value
                break
    return found


def stated_attributes(texts: Sequence[str]) -> torch.Tensor:
    """(N, 3) tone, fit, pattern each text asks for (:func:`parse_caption`); -1 = not stated."""
    parsed = [parse_caption(text) for text in texts]
    return torch.tensor(
        [[-1 if p[name] is None else p[name] for name in ATTRIBUTES] for p in parsed],
        dtype=torch.long,
    ).view(len(parsed), len(ATTRIBUTES))
