"""Shoppers' own words, read before the grammar's detector: shop vocabulary, typos, spacing
variants, implied items, negation and garments the catalog does not carry.

:class:`ShopperDetector` wraps :class:`~fashiongan.search.intent.IntentDetector`: it rewrites the
message into the grammar's words ("jumper" → "pullover", "pulover" → "pullover" by fuzzy
matching with rapidfuzz, "t shirt" → "t-shirt", "something to keep my feet dry" → "ankle boot"),
takes negated phrases out with their scope ("a dress, anything but black" → excluded tone dark;
"not a sneaker, a sandal" → excluded class sneaker) and lets the detector read the rest. The
result is a :class:`ShopperIntent`: the detector's intent plus what is excluded, which words were
not understood and which items the catalog lacks ("a swimsuit" → no class, said so). With a
:class:`~fashiongan.search.multilingual.MultilingualReader`, the words still unread are matched
to the vocabulary in a multilingual encoder's space ("une veste" → coat, "Turnschuhe" → sneaker).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from rapidfuzz import fuzz, process
from wordfreq import zipf_frequency

from fashiongan.search.foreign_words import FOREIGN_STOPWORDS, NEGATION_WORDS, fold
from fashiongan.search.implied import ImpliedItem, ImpliedItemReader
from fashiongan.search.intent import STOPWORDS, Intent, IntentDetector, Keyword
from fashiongan.search.multilingual import OTHER_LANGUAGES, MultilingualReader, reads_as_english
from fashiongan.text.captions import CLASS_SYNONYMS, FIT_WORDS, PATTERN_WORDS, TONE_WORDS

#: Shop words → (slot, value); a class word is rewritten to the grammar's first synonym.
# fmt: off
SHOP_WORDS: dict[str, tuple[str, int]] = {
    **dict.fromkeys(("tshirt", "tee", "tees", "top", "tops", "tank", "camisole", "cami",
                     "singlet", "crop", "henley"), ("class", 0)),
    **dict.fromkeys(("trousers", "trouser", "pants", "jeans", "chinos", "joggers", "leggings",
                     "slacks", "sweatpants", "trackies", "cargos", "culottes", "palazzos",
                     "palazzo"), ("class", 1)),
    **dict.fromkeys(("pullover", "jumper", "sweater", "hoodie", "hoody", "sweatshirt",
                     "cardigan", "knit", "knitwear", "fleece", "turtleneck", "rollneck",
                     "poloneck"), ("class", 2)),
    **dict.fromkeys(("dress", "gown", "frock", "sundress", "maxi", "lbd", "pinafore"),
                    ("class", 3)),
    **dict.fromkeys(("coat", "jacket", "parka", "anorak", "mac", "raincoat", "trench",
                     "blazer", "overcoat", "puffer", "windbreaker", "peacoat", "duffle",
                     "cagoule"), ("class", 4)),
    **dict.fromkeys(("sandal", "sandals", "flipflops", "flipflop", "sliders", "slides",
                     "espadrilles", "mules", "thongs", "gladiators"), ("class", 5)),
    **dict.fromkeys(("shirt", "blouse", "flannel", "buttondown", "oxford", "overshirt",
                     "chambray"), ("class", 6)),
    **dict.fromkeys(("sneaker", "sneakers", "trainer", "trainers", "runners", "kicks",
                     "plimsolls", "plimsoll", "hightops", "hightop", "hitops", "hitop",
                     "daps"), ("class", 7)),
    **dict.fromkeys(("bag", "handbag", "purse", "tote", "clutch", "backpack", "rucksack",
                     "satchel", "shopper", "crossbody", "holdall"), ("class", 8)),
    **dict.fromkeys(("boot", "boots", "ankle", "booties", "bootie", "chelsea", "wellies",
                     "wellingtons", "chukkas", "chukka"), ("class", 9)),
    **dict.fromkeys(("black", "navy", "charcoal", "dark", "darker", "deep"), ("tone", 0)),
    **dict.fromkeys(("grey", "gray", "medium"), ("tone", 1)),
    **dict.fromkeys(("white", "cream", "beige", "ivory", "pastel", "light", "pale"),
                    ("tone", 2)),
    **dict.fromkeys(("tight", "fitted", "skinny", "slim", "narrow", "snug", "bodycon"),
                    ("fit", 0)),
    **dict.fromkeys(("loose", "baggy", "oversized", "relaxed", "wide", "roomy", "flowy",
                     "boxy", "broad"), ("fit", 2)),
    **dict.fromkeys(("striped", "stripes", "stripy", "stripe", "print", "prints", "printed",
                     "floral", "pattern", "patterns", "patterned", "checked", "plaid",
                     "dotted", "spotted", "logo", "graphic", "graphics"), ("pattern", 1)),
    **dict.fromkeys(("plain", "solid"), ("pattern", 0)),
}
#: Garments and accessories this catalog does not carry: read, and said, but no class.
OUTSIDE = frozenset({
    "swimsuit", "swimsuits", "bikini", "swimwear", "trunks", "tie", "ties", "socks", "sock",
    "hat", "hats", "cap", "beanie", "scarf", "scarves", "gloves", "glove", "mittens", "belt",
    "belts", "sunglasses", "glasses", "watch", "necklace", "earrings", "jewellery", "jewelry",
    "umbrella", "wallet", "underwear", "bra", "pyjamas", "pajamas", "lingerie", "heels",
    "shorts", "skirt", "skirts", "suit", "tuxedo", "tights", "stockings", "cufflinks",
    "brogues", "loafers", "slippers", "beret", "dressinggown", "bathrobe", "onesie", "onesies",
    "stilettos", "stiletto", "tutu", "sarong", "jumpsuit", "jumpsuits", "playsuit", "playsuits",
    "leotard", "kilt", "waistcoat",
})
# fmt: on
_NEGATION = re.compile(
    r"\b(not(?: too| so| very| a| an| the| in| any)*|no(?: more)?|without|anything but|"
    r"nothing(?: too| so)?|never|except|but not|isn'?t|aren'?t|don'?t want|instead of|"
    r"rather than|neither|don'?t have|doesn'?t have|"
    # another language's negation before an English shop word ("een trui zonder print")
    + "|".join(map(re.escape, NEGATION_WORDS))
    + r")\b"
)
#: Where a negation's scope ends.
_SCOPE_END = re.compile(r"[,.;!?]|\b(but|and|just|only|instead|rather|please)\b")
_WORD = re.compile(r"[^\W_]+(?:['-][^\W_]+)*")  # accented letters too: "weiß", "tênis"
_CANONICAL = {
    "class": {v: w[0] for v, w in CLASS_SYNONYMS.items()},
    "tone": {v: w[0] for v, w in TONE_WORDS.items()},
    "fit": {v: w[0] for v, w in FIT_WORDS.items()},
    "pattern": {v: w[0] for v, w in PATTERN_WORDS.items()},
}
_SLOT_OF = {word: slot for slot, names in _CANONICAL.items() for word in names.values()}
_KNOWN = frozenset(SHOP_WORDS) | OUTSIDE
_FUZZY_CHOICES = sorted(w for w in _KNOWN if len(w) >= 4)


@dataclass(frozen=True)
class ShopperIntent(Intent):
    """The detector's intent plus excluded values, unread words and items the catalog lacks."""

    excluded: dict[str, frozenset[int]] = field(default_factory=dict)
    unknown: tuple[str, ...] = ()
    outside: tuple[str, ...] = ()
    asked: str = ""  # the message without its negated phrases: what may be drawn from it

    @property
    def readable(self) -> bool:
        named = any(v is not None for v in (self.label, self.tone, self.fit, self.pattern))
        return named or bool(self.excluded) or bool(self.outside)

    def to_dict(self) -> dict:
        excluded = {
            slot: [_CANONICAL[slot][v] for v in sorted(values)]
            for slot, values in self.excluded.items()
        }
        return super().to_dict() | {
            "excluded": excluded,
            "unknown": list(self.unknown),
            "outside": list(self.outside),
        }


@dataclass(frozen=True)
class _ReadAs:
    """What the shopper typed for a grammar word, and how it was read."""

    typed: str
    how: str  # shop | fuzzy | multilingual | implied
    score: float | None = None  # the reading encoder's cosine similarity


@dataclass(frozen=True)
class _Rewrite:
    """The message in the grammar's words, and how each word got there."""

    text: str
    read_as: dict[str, _ReadAs]  # canonical word → how the shopper's words got there
    excluded: dict[str, frozenset[int]]
    outside: tuple[str, ...]
    consumed: frozenset[str]  # typed words used by a rule
    asked: str  # the message without its negated phrases


class ShopperDetector:
    """Reads a message in shoppers' words (see the module docstring).

    Args:
        detector: the grammar's detector (its ``detect`` reads the rewritten message).
        fuzzy_cutoff: the lowest rapidfuzz ratio (0-100) at which a typo is read as a word.
        foreign: reads what the rest left unread in other languages (None: English only).
        implied: reads the item a sentence implies ("something to keep my feet dry"; None:
            such sentences stay unread).
        leftovers: reads what the words left beside a named item imply ("a coat for the
            rain"), to tell the shopper they were understood (None: ``implied``).
    """

    def __init__(
        self,
        detector: IntentDetector,
        fuzzy_cutoff: float,
        foreign: MultilingualReader | None = None,
        implied: ImpliedItemReader | None = None,
        leftovers: ImpliedItemReader | None = None,
    ) -> None:
        self.detector = detector
        self.fuzzy_cutoff = fuzzy_cutoff
        self.foreign = foreign
        self.implied = implied
        self.leftovers = leftovers if leftovers is not None else implied

    def detect(self, text: str) -> ShopperIntent:
        rewrite = self.rewrite(text)
        intent = self.detector.detect(rewrite.text) if rewrite.text.strip() else Intent()
        keywords = tuple(_typed(k, rewrite.read_as) for k in intent.keywords)
        label = intent.label
        excluded = rewrite.excluded
        if label is not None and label in excluded.get("class", ()):
            label = None  # "not a sneaker": never asked for
        used = {w for k in keywords for w in _WORD.findall(k.phrase)} | rewrite.consumed
        words = _WORD.findall(_joined_variants(text.lower()))[: self.detector.max_words]
        unknown = tuple(dict.fromkeys(w for w in words if _reported(w) and w not in used))
        values = {s: getattr(intent, s) for s in ("tone", "fit", "pattern")}
        values = {s: None if v in excluded.get(s, ()) else v for s, v in values.items()}
        return ShopperIntent(
            label=label, **values, keywords=keywords, words_used=intent.words_used,
            excluded=excluded, unknown=unknown, outside=rewrite.outside, asked=rewrite.asked,
        )  # fmt: skip

    @property
    def max_words(self) -> int:
        return self.detector.max_words

    def rewrite(self, text: str) -> _Rewrite:
        """The message in the grammar's words, with negated phrases taken out."""
        lowered = " ".join(_joined_variants(text.lower()).split())
        kept, excluded, consumed = _without_negations(lowered, self._word)
        kept, context = _without_context(kept, self._word)
        consumed |= context
        read_as: dict[str, _ReadAs] = {}
        outside: list[str] = []
        words: list[str | None] = []  # None: read as nothing (an item the catalog lacks, or
        # the first noun of a compound)
        unread: list[str | None] = []  # the words no rule read (None where one did)
        for word in _WORD.findall(kept):
            known = self._word(word)
            if known is None:
                words.append(word)
                unread.append(word)
                continue
            typed, canonical, how = known
            consumed.add(word)
            if canonical is None:
                outside.append(typed)
            else:
                if _SLOT_OF[canonical] == "class" and words and _SLOT_OF.get(words[-1]) == "class":
                    # English compounds end on their head: a "shirt dress" is a dress
                    read_as.pop(words[-1], None)
                    words[-1] = None
                read_as[canonical] = _ReadAs(typed, how)
            words.append(canonical)  # parallel to unread: the foreign reader's spans index both
            unread.append(None)
        unread = [w if w not in consumed and w and _content(w) else None for w in unread]
        # an English sentence is read for the item it implies before its words are tried as
        # foreign ones ("gym" would read as trousers); a foreign one after (its item words),
        # and only where a foreign reader is there first: the implied-item encoder reads
        # English ("un bolso" came out a sandal)
        english = reads_as_english([w for w in unread if w])
        reads_implied = english or self.foreign is not None
        for step in ("implied", "foreign") if english else ("foreign", "implied"):
            if step == "implied" and reads_implied and not _names_an_item(words, outside):
                words, implied, lacking = self._read_implied(kept, words, unread)
                read_as |= implied
                outside += lacking
                consumed.update(w for w in unread if w and (implied or lacking))
                unread = [None if implied or lacking else w for w in unread]
            elif step == "foreign" and self.foreign is not None:
                taken = frozenset(_SLOT_OF[w] for w in read_as) | ({"class"} if outside else set())
                before = [w for w in words if w is not None]
                words, foreign, negated = self._read_foreign(words, unread, taken)
                read_as |= foreign
                excluded = _merged(excluded, negated)
                after = {w for w in words if w is not None}
                consumed.update(w for w in before if w not in after)
                unread = [None if w in consumed else w for w in unread]
        left = [w for w in unread if w is not None and w not in consumed]
        if (
            left
            and reads_implied
            and self.leftovers is not None
            and _says_the_same(self.leftovers.read(" ".join(left)), words, outside)
        ):
            consumed.update(left)  # "a coat for the rain": the rest implies the item named
        if outside and not any(_SLOT_OF.get(w) == "class" for w in words):
            # "a wool scarf": the words beside an item the catalog lacks describe it, and read
            # by the grammar's detector they would draw a class ("wool" → pullover)
            words = [w for w in words if w in _SLOT_OF]
        # the grammar's detector reads English: the words of a foreign message that no rule
        # read, and function words anywhere ("with" is no "with a pattern"), are left to it unread
        words = [w for w in words if w in _SLOT_OF or (english and w is not None and _content(w))]
        asked = " ".join(_WORD.findall(kept))
        return _Rewrite(
            " ".join(words), read_as, excluded, tuple(outside), frozenset(consumed), asked
        )

    def _read_implied(
        self, kept: str, words: list[str | None], unread: list[str | None]
    ) -> tuple[list[str | None], dict[str, _ReadAs], list[str]]:
        """The item a message naming none implies, read from the whole message.

        Returns:
            The words for the detector (only what was read, where an item was), how the
            implied class was read, and the item the catalog lacks it names.
        """
        left = [w for w in unread if w is not None]
        if self.implied is None or not any(map(_a_known_word, left)):
            return words, {}, []
        item = self.implied.read(kept)
        if item is None:
            return words, {}, []
        words = [w for w in words if w in _SLOT_OF]
        if item.label is None:
            return words, {}, [item.outside]
        canonical = _CANONICAL["class"][item.label]
        return [*words, canonical], {canonical: _ReadAs(" ".join(left), "implied", item.score)}, []

    def _read_foreign(
        self, words: list[str | None], unread: list[str | None], taken: frozenset[str]
    ) -> tuple[list[str | None], dict[str, _ReadAs], dict[str, frozenset[int]]]:
        """The words with each span the multilingual reader places replaced by its grammar
        word, for the slots not ``taken`` (already read, or an item the catalog lacks named),
        how each was read, and the values negated ones exclude ("sans rayures")."""
        rewritten: list[str | None] = []
        read_as: dict[str, _ReadAs] = {}
        excluded: dict[str, frozenset[int]] = {}
        position = 0
        for reading in self.foreign.read(unread, taken):
            canonical = _CANONICAL[reading.slot][reading.value]
            rewritten += words[position : reading.start]
            if reading.negated:
                excluded[reading.slot] = excluded.get(reading.slot, frozenset()) | {reading.value}
            else:
                rewritten.append(canonical)
                read_as[canonical] = _ReadAs(reading.phrase, "multilingual", reading.score)
            position = reading.end
        return rewritten + words[position:], read_as, excluded

    def _word(self, word: str) -> tuple[str, str | None, str] | None:
        """(typed, canonical word or None for an item the catalog lacks, how) or None."""
        how = "shop"
        found = word if word in _KNOWN else _singular(word)
        if found is None and len(word) >= 4 and not _common_english(word):
            match = process.extractOne(
                word, _FUZZY_CHOICES, scorer=fuzz.ratio, score_cutoff=self.fuzzy_cutoff
            )
            found, how = (match[0], "fuzzy") if match else (None, how)
        if found is None:
            return None
        if found in OUTSIDE:
            return word, None, how
        slot, value = SHOP_WORDS[found]
        return word, _CANONICAL[slot][value], how


def _singular(word: str) -> str | None:
    """The shop word a plural is of ("coats" → "coat", "dresses" → "dress"), or None."""
    for ending in ("es", "s"):
        stem = word[: -len(ending)]
        if word.endswith(ending) and (stem in OUTSIDE or SHOP_WORDS.get(stem, ("",))[0] == "class"):
            return stem  # nouns only: "tights" are not "tight"
    return None


def _merged(
    excluded: dict[str, frozenset[int]], more: dict[str, frozenset[int]]
) -> dict[str, frozenset[int]]:
    return {s: excluded.get(s, frozenset()) | more.get(s, frozenset()) for s in excluded | more}


def _names_an_item(words: list[str | None], outside: list[str]) -> bool:
    return bool(outside) or any(_SLOT_OF.get(w) == "class" for w in words)


def _says_the_same(item: ImpliedItem | None, words: list[str | None], outside: list[str]) -> bool:
    """Whether the implied ``item`` is the one the message names (a class, or none carried)."""
    if item is None:
        return False
    if item.label is None:
        return bool(outside)
    return _CANONICAL["class"][item.label] in words


def _typed(keyword: Keyword, read_as: dict[str, _ReadAs]) -> Keyword:
    """The keyword as the shopper typed it: "jumper → pullover", "'pulover' → pullover",
    "une veste → coat (0.81)" (the multilingual encoder's similarity)."""
    typed = read_as.get(keyword.phrase)
    if typed is None or typed.typed == keyword.phrase:
        return keyword
    phrase = f"'{typed.typed}'" if typed.how == "fuzzy" else typed.typed
    if typed.score is None:
        return replace(keyword, phrase=phrase)
    return replace(keyword, phrase=phrase, score=round(typed.score, 4))


def _joined_variants(text: str) -> str:
    """Spacing variants joined: "t shirt" → "tshirt", "hand bag" → "handbag", "flip flops"."""
    for spaced, joined in (
        (r"(?<![\w'])t[\s-]+(s\w*)", r"t\1"),  # "t shirt", and typos for the fuzzy match: "t shrit"
        (r"(?<![\w'])tee[\s-]+(sh\w*)", r"t\1"),  # "tee shirt", "tee shrit"
        (r"\bhigh[\s-]+tops?\b", "trainers"),
        (r"\bhand[\s-]+bags?\b", "handbag"),
        (r"\bflip[\s-]+flops?\b", "flipflops"),
        (r"\bsweat[\s-]+shirts?\b", "sweatshirt"),
        (r"\bback[\s-]+packs?\b", "backpack"),
        (r"\bbutton[\s-]+(down|up)s?\b", "buttondown"),
        (r"\brain[\s-]+coats?\b", "raincoat"),
        (r"\bover[\s-]+coats?\b", "overcoat"),
        (r"\bankle[\s-]*boots?\b", "boot"),
        (r"\brunning[\s-]+shoes?\b|\btennis[\s-]+shoes?\b|\bgym[\s-]+shoes?\b", "trainers"),
    ):
        text = re.sub(spaced, joined, text)
    return _joined_pairs(text)


def _joined_pairs(text: str) -> str:
    """Two words that make one shop word when joined ("pull over" → "pullover")."""
    pieces = re.split(r"([\s-]+)", text)  # words at even places, separators between
    for i in range(0, len(pieces) - 2, 2):
        joined = pieces[i] + pieces[i + 2]
        if pieces[i] and (joined in _KNOWN or _singular(joined)):
            pieces[i : i + 3] = ["", "", joined]
    return "".join(pieces)


def _without_negations(text: str, read_word) -> tuple[str, dict[str, frozenset[int]], set]:
    """The text with each negation and its scope removed, the values the scopes name, and the
    words consumed (the negations and their scopes)."""
    excluded: dict[str, set[int]] = {}
    consumed: set[str] = set()
    kept, position = [], 0
    for match in _NEGATION.finditer(text):
        if match.start() < position:
            continue
        end = _SCOPE_END.search(text, match.end())
        stop = end.start() if end else len(text)
        stop, values = _scope(text, match.end(), stop, read_word)
        if not values:
            continue  # "not sure what I want": nothing excluded, the words stay
        for slot, value in values:
            excluded.setdefault(slot, set()).add(value)
        kept.append(text[position : match.start()])
        consumed.update(_WORD.findall(text[match.start() : stop]))
        position = stop
    kept.append(text[position:])
    return " ".join(kept), {s: frozenset(v) for s, v in excluded.items()}, consumed


#: Items named as what the asked one goes with ("a top to wear under my hoodie").
_CONTEXT = re.compile(
    r"\b(?:under|underneath|beneath|over|on top of|with|to go with|to match|matching)\s+"
    r"(?:(?:a|an|the|my|your|some|this|that)\s+)?"
)


def _without_context(text: str, read_word) -> tuple[str, set[str]]:
    """The text without the items it names only as context (the one or two item words after
    "under my", "with a", "to go with"; "a dress with stripes" keeps its pattern), and the
    words taken out."""
    consumed: set[str] = set()
    for match in reversed(list(_CONTEXT.finditer(text))):
        items = []
        for word in _WORD.finditer(text, match.end()):
            read = read_word(word.group(0))
            if len(items) == 2 or word.start() > (items[-1].end() + 1 if items else match.end()):
                break
            if read is None or (read[1] is not None and _SLOT_OF.get(read[1]) != "class"):
                break
            items.append(word)
        if items:
            consumed.update(_WORD.findall(text[match.start() : items[-1].end()]))
            text = text[: match.start()] + text[items[-1].end() :]
    return text, consumed


def _scope(text: str, start: int, stop: int, read_word) -> tuple[int, list[tuple[str, int]]]:
    """Where a negation's scope really ends and the values it names: "not too baggy trousers"
    negates the fit, not the trousers (a class after an attribute ends the scope)."""
    values: list[tuple[str, int]] = []
    for word in re.finditer(_WORD, text[start:stop]):
        read = read_word(word.group(0))
        if not read or not read[1]:
            continue
        slot, value = SHOP_WORDS[_word_key(read)]
        if slot == "class" and values and all(s != "class" for s, _ in values):
            return start + word.start(), values
        values.append((slot, value))
    return stop, values


def _word_key(read: tuple[str, str | None, str]) -> str:
    """The SHOP_WORDS key of a read word (its typed form, or the canonical one for typos)."""
    typed, canonical, _ = read
    if typed in SHOP_WORDS:
        return typed
    return next(w for w, (slot, v) in SHOP_WORDS.items() if _CANONICAL[slot][v] == canonical)


#: Verbs of wanting and wearing: read as nothing, and not worth reporting.
_FILLER = frozenset(
    {"wear", "wearing", "keep", "use", "go", "going", "put", "wanted", "shopping", "with"}
)


#: wordfreq's Zipf frequency from which a word is taken as spelt right (a few times in a million
#: English words): "short" (5.3) is not a typo of "shorts", "pulover" (0) is one of "pullover".
COMMON_ENGLISH_ZIPF = 3.0


def _common_english(word: str) -> bool:
    return word in STOPWORDS or zipf_frequency(word, "en") >= COMMON_ENGLISH_ZIPF


def _a_known_word(word: str) -> bool:
    """A word of English or of the other languages read ("xqzw" is none)."""
    return any(zipf_frequency(word, language) > 0 for language in ("en", *OTHER_LANGUAGES))


def _content(word: str) -> bool:
    return word not in STOPWORDS and word not in _FILLER and not word.isdigit() and len(word) > 1


def _reported(word: str) -> bool:
    """A word worth listing as not understood (no article of another language either)."""
    return _content(word) and fold(word) not in FOREIGN_STOPWORDS
