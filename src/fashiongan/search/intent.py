"""What a shopper asks for: class and tone/fit/pattern phrases, found semantically with BERT.

The vocabulary is the caption grammar's words (``text.captions``: ``CLASS_SYNONYMS``,
``TONE_WORDS``, ``FIT_WORDS``, ``PATTERN_WORDS``) plus a few common shop words. Every 1–3 word
phrase of the query is embedded with the sentence encoder and matched to its nearest vocabulary
phrase by cosine similarity, so words the grammar never uses still land on the right slot
("trainers", "running shoes" → sneaker; "skinny" → slim; "oversized" → wide). Exact vocabulary
phrases score 1.0 without a BERT call, and so do phrases made only of them. The strongest match wins each slot, and phrases may not
overlap.
"""

from __future__ import annotations

import functools
import re
from dataclasses import asdict, dataclass, field, replace

import torch

from fashiongan.text.captions import CLASS_SYNONYMS, FIT_WORDS, PATTERN_WORDS, TONE_WORDS

SLOTS = ("class", "tone", "fit", "pattern")

#: Shop words the caption grammar does not use; the first word of each grammar list stays the
#: canonical name. Deliberately incomplete: the encoder covers the rest.
EXTRA_CLASS_WORDS: dict[int, tuple[str, ...]] = {
    0: ("tank top", "crop top"),
    1: ("leggings", "joggers"),
    2: ("cardigan", "sweatshirt"),
    3: ("maxi dress",),
    4: ("parka", "blazer", "raincoat"),
    5: ("flip-flop", "slide"),
    6: ("button-down",),
    7: ("athletic shoe",),
    8: ("tote", "clutch", "satchel"),
    9: ("chelsea boot", "bootie"),
}
EXTRA_ATTRIBUTE_WORDS: dict[str, dict[int, tuple[str, ...]]] = {
    "tone": {0: ("black", "navy", "charcoal"), 1: ("grey", "medium"), 2: ("white", "cream")},
    "fit": {0: ("tight", "fitted"), 1: ("standard fit",), 2: ("loose", "baggy", "relaxed")},
    "pattern": {
        0: ("without a pattern", "without a print", "no print", "no pattern"),
        1: ("with a pattern", "with a print", "striped", "floral", "checked"),
    },
}
#: Words that never start or end a candidate phrase (they would match anything weakly).
# fmt: off
STOPWORDS = frozenset({
    "a", "an", "the", "i", "me", "my", "we", "you", "your", "for", "to", "of", "and", "or",
    "in", "on", "at", "is", "are", "am", "be", "some", "any", "one", "something", "please",
    "want", "need", "looking", "look", "show", "find", "get", "give", "buy", "like", "would",
    "love", "have", "has", "do", "does", "can", "could", "this", "that", "these", "those",
    "it", "its", "pair",
    # conversation words: "the same but …", "a shade darker", "make it a bit wider"
    "same", "but", "similar", "instead", "rather", "make", "change", "form", "as", "into",
    "more", "less", "bit", "little", "slightly", "much", "far", "way", "lot", "tone", "shade",
    "version", "cut",
})
# fmt: on
_WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")


@dataclass(frozen=True)
class Keyword:
    """One detected phrase: where it is in the query and what it was read as."""

    phrase: str  # the words of the query
    slot: str  # class | tone | fit | pattern
    value: int  # class label or attribute value
    name: str  # canonical word: "sneaker", "dark", "wide", "patterned"
    matched: str  # the vocabulary phrase it is closest to
    score: float  # cosine similarity (1.0 = exact vocabulary phrase)

    def describe(self) -> str:
        """'trainers → sneaker (0.87)' or 'dark' when exact."""
        if self.phrase == self.name:
            return self.name
        return f"{self.phrase} → {self.name} ({self.score:.2f})"


@dataclass(frozen=True)
class Intent:
    """The slots found in a query (None = not mentioned) and the evidence for each."""

    label: int | None = None
    tone: int | None = None
    fit: int | None = None
    pattern: int | None = None
    keywords: tuple[Keyword, ...] = field(default_factory=tuple)
    words_used: int = 0  # query words read (the rest was past ``max_words``)

    @property
    def class_name(self) -> str | None:
        return None if self.label is None else CLASS_SYNONYMS[self.label][0]

    def caption(self) -> str | None:
        """The query in the caption grammar the generator was trained on, or None without a class.

        e.g. "a dark wide patterned pullover" (tone, fit, pattern, noun).
        """
        if self.label is None:
            return None
        words = [
            TONE_WORDS[self.tone][0] if self.tone is not None else None,
            FIT_WORDS[self.fit][0] if self.fit is not None else None,
            PATTERN_WORDS[self.pattern][0] if self.pattern is not None else None,
            CLASS_SYNONYMS[self.label][0],
        ]
        text = " ".join(w for w in words if w)
        if self.label == 1:  # plural noun: "dark trousers"
            return text
        return ("an " if text[0] in "aeiou" else "a ") + text

    def to_dict(self) -> dict:
        return {
            "class": self.class_name,
            "label": self.label,
            "tone": None if self.tone is None else TONE_WORDS[self.tone][0],
            "fit": None if self.fit is None else FIT_WORDS[self.fit][0],
            "pattern": None if self.pattern is None else PATTERN_WORDS[self.pattern][0],
            "caption": self.caption(),
            "keywords": [asdict(k) | {"text": k.describe()} for k in self.keywords],
        }


def vocabulary() -> list[tuple[str, str, int]]:
    """(phrase, slot, value) for every class and attribute phrase the detector knows."""
    entries = []
    for label, words in CLASS_SYNONYMS.items():
        entries += [(w, "class", label) for w in (*words, *EXTRA_CLASS_WORDS.get(label, ()))]
    for slot, table in (("tone", TONE_WORDS), ("fit", FIT_WORDS), ("pattern", PATTERN_WORDS)):
        for value, words in table.items():
            extra = EXTRA_ATTRIBUTE_WORDS[slot].get(value, ())
            entries += [(w, slot, value) for w in (*words, *extra)]
    return entries


def candidate_phrases(words: list[str], max_n: int = 3) -> list[tuple[int, int, str]]:
    """(start, end, phrase) for every 1..max_n word span not starting or ending on a stopword."""
    spans = []
    for n in range(1, max_n + 1):
        for start in range(len(words) - n + 1):
            chunk = words[start : start + n]
            if chunk[0] in STOPWORDS or chunk[-1] in STOPWORDS:
                continue
            spans.append((start, start + n, " ".join(chunk)))
    return spans


def _forms(phrase: str) -> tuple[str, ...]:
    """The phrase and its possible singulars: "trainers" → ("trainers", "trainer", "trainer")."""
    return (phrase, phrase.removesuffix("s"), phrase.removesuffix("es"))


@functools.lru_cache(maxsize=4)
def _vocabulary_vectors(encoder) -> torch.Tensor:
    """Embeddings of :func:`vocabulary`, computed once per encoder."""
    return encoder.encode([phrase for phrase, _, _ in vocabulary()])


class IntentDetector:
    """Finds class and attribute phrases in a query, as ``search_app.query`` sets it
    (:func:`fashiongan.search.query.shopper_reader` builds it from that block).

    Args:
        encoder: a ``fashiongan.text.encoder.TextEncoder`` (normalised sentence vectors).
        class_threshold: minimum cosine similarity for a class phrase.
        attribute_threshold: minimum cosine similarity for a tone/fit/pattern phrase.
        max_words: only the first words of a long query are read.
    """

    def __init__(
        self,
        encoder,
        *,
        class_threshold: float,
        attribute_threshold: float,
        max_words: int,
    ) -> None:
        self.encoder = encoder
        self.thresholds = {"class": class_threshold}
        self.thresholds.update(dict.fromkeys(SLOTS[1:], attribute_threshold))
        self.max_words = max_words
        self.entries = vocabulary()
        self.exact = {phrase: i for i, (phrase, _, _) in enumerate(self.entries)}
        self.vectors = _vocabulary_vectors(encoder)  # (V, dim)

    def _canonical(self, slot: str, value: int) -> str:
        table = {"class": CLASS_SYNONYMS, "tone": TONE_WORDS, "fit": FIT_WORDS}
        return table.get(slot, PATTERN_WORDS)[value][0]

    def detect(self, text: str) -> Intent:
        """Read ``text`` (any length; empty text gives an empty intent)."""
        words = _WORD.findall(text.lower())[: self.max_words]
        spans = candidate_phrases(words)
        matches: list[tuple[float, int, int, int, int, str]] = []  # score, len, start, end, entry
        rest, covered = [], set()
        for start, end, phrase in spans:
            exact = next((self.exact[f] for f in _forms(phrase) if f in self.exact), None)
            if exact is not None:
                matches.append((1.0, end - start, start, end, exact, phrase))
                covered.update(range(start, end))
            else:
                rest.append((start, end, phrase))
        # Phrases made only of exact vocabulary words add nothing ("light dress"): no BERT call.
        to_encode = [span for span in rest if not covered.issuperset(range(span[0], span[1]))]
        if to_encode:
            with torch.no_grad():
                scores = self.encoder.encode([p for _, _, p in to_encode]) @ self.vectors.T
            best, entry = scores.max(dim=1)
            for (start, end, phrase), score, i in zip(
                to_encode, best.tolist(), entry.tolist(), strict=True
            ):
                matches.append((score, end - start, start, end, i, phrase))

        found: dict[str, Keyword] = {}
        taken: list[tuple[int, int]] = []
        # Strongest first; on a tie the longer phrase ("running shoe" before "shoe"), then the
        # earlier one.
        for score, _, start, end, i, phrase in sorted(matches, key=lambda m: (-m[0], -m[1], m[2])):
            _, slot, value = self.entries[i]
            if slot in found or score < self.thresholds[slot]:
                continue
            if any(start < t_end and t_start < end for t_start, t_end in taken):
                continue
            taken.append((start, end))
            found[slot] = Keyword(
                phrase=phrase,
                slot=slot,
                value=value,
                name=self._canonical(slot, value),
                matched=self.entries[i][0],
                score=round(float(score), 4),
            )
        keywords = tuple(found[s] for s in SLOTS if s in found)
        return Intent(
            label=found["class"].value if "class" in found else None,
            tone=found["tone"].value if "tone" in found else None,
            fit=found["fit"].value if "fit" in found else None,
            pattern=found["pattern"].value if "pattern" in found else None,
            keywords=keywords,
            words_used=len(words),
        )


# --- conversation turns: does a message describe a new item or change the reference? -------------
#: Comparatives and the step they take on their scale (tone: 0 dark → 2 light; fit: 0 slim → 2
#: wide). "much"/"far"/"way" before one doubles the step.
COMPARATIVES: dict[str, tuple[str, int]] = {
    "darker": ("tone", -1),
    "deeper": ("tone", -1),
    "lighter": ("tone", 1),
    "paler": ("tone", 1),
    "brighter": ("tone", 1),
    "slimmer": ("fit", -1),
    "narrower": ("fit", -1),
    "tighter": ("fit", -1),
    "wider": ("fit", 1),
    "broader": ("fit", 1),
    "looser": ("fit", 1),
    "baggier": ("fit", 1),
}
_COMPARATIVE_WORD = re.compile(r"\b(" + "|".join(COMPARATIVES) + r")\b")
_INTENSIFIERS = frozenset({"much", "far", "way", "lot"})
_RESET = re.compile(
    r"\b(start(ing)? (over|again|afresh)|new search|reset|forget (it|that|this|everything))\b[,.!]*"
)
#: Words that say "like the reference, but…": a message with one of them modifies.
_MODIFY_CUE = re.compile(
    r"\b(the same|same but|like this|like that|like it|similar|instead|but|rather|"
    r"in the form of|make it|change it|as an?|as a pair of)\b"
)

NEW, MODIFY, RESET = "new", "modify", "start over"


@dataclass(frozen=True)
class Message:
    """How one chat message is read.

    Attributes:
        kind: ``new`` (describes an item: start afresh), ``modify`` (changes the reference) or
            ``start over`` (forget the reference; a description after it starts a new search).
        intent: the classes and absolute attributes named ("as a dress" → class 3).
        steps: relative changes, e.g. ``{"tone": -1}`` for "darker".
        reason: why ``kind`` was chosen, in words the shopper sees.
    """

    kind: str
    intent: Intent
    steps: dict[str, int] = field(default_factory=dict)
    reason: str = ""

    @property
    def changes_something(self) -> bool:
        i = self.intent
        return bool(self.steps) or any(v is not None for v in (i.label, i.tone, i.fit, i.pattern))


def relative_steps(text: str) -> dict[str, int]:
    """{"tone": -1} for "darker", {"fit": 2} for "much wider"; the first comparative per scale."""
    words = _WORD.findall(text.lower())
    steps: dict[str, int] = {}
    for i, word in enumerate(words):
        if word in COMPARATIVES:
            slot, step = COMPARATIVES[word]
            doubled = i > 0 and words[i - 1] in _INTENSIFIERS
            steps.setdefault(slot, step * (2 if doubled else 1))
    return steps


def read_message(
    detector: IntentDetector, text: str, has_reference: bool, with_picture: bool = False
) -> Message:
    """Decide whether ``text`` modifies the current reference, describes a new item or resets.

    A message modifies when there is a reference and it holds a comparative ("darker"), a
    "like this / the same but / as a …" cue, or only attributes ("with a pattern"); a message
    naming a class without such a cue ("a dark coat") describes a new item. A message sent
    together with a picture always changes that picture: the shopper showed it for a reason.
    """
    lowered = text.lower()
    reset = _RESET.search(lowered)
    rest = (_RESET.sub(" ", lowered) if reset else lowered).strip(" ,.;:!-")
    steps = relative_steps(rest)
    # punctuation kept: it ends a negation's scope ("no, a dress instead" asks for a dress)
    described = " ".join(_COMPARATIVE_WORD.sub(" ", rest).split())
    intent = detector.detect(described) if described else Intent()
    if steps:  # "darker" is a change of the reference's tone, not the absolute "dark"
        intent = _without_slots(intent, steps)
    if reset:
        what = f" and describes a new item ({intent.caption()})" if intent.caption() else ""
        return Message(RESET, intent, {}, f"'{reset.group(0).strip(' ,.!')}' starts over{what}")
    cue = _MODIFY_CUE.search(rest)
    if with_picture:
        return Message(MODIFY, intent, steps, "the picture sent with the message is the reference")
    attributes_only = intent.label is None and any(
        v is not None for v in (intent.tone, intent.fit, intent.pattern)
    )
    if steps or cue or attributes_only:
        phrases = ", ".join(k.phrase for k in intent.keywords)
        said = next(iter(_comparatives_in(rest)), None) or (cue.group(0) if cue else phrases)
        where = "the reference" if has_reference else "nothing yet (no reference)"
        return Message(MODIFY, intent, steps, f"'{said}' changes {where}")
    if intent.label is not None:
        return Message(NEW, intent, {}, f"'{intent.caption()}' describes a new item")
    return Message(NEW, intent, {}, "no item or change recognised: searching with your words")


def _comparatives_in(text: str) -> list[str]:
    return [w for w in _WORD.findall(text) if w in COMPARATIVES]


def _without_slots(intent: Intent, steps: dict[str, int]) -> Intent:
    """The intent with the slots a comparative already changes left out."""
    keep = tuple(k for k in intent.keywords if k.slot not in steps)
    return replace(intent, keywords=keep, **dict.fromkeys(steps))
