"""The item a sentence implies ("something to keep my feet dry" → ankle boot), read by the
nearest described item in a sentence encoder's space.

Each of the catalog's ten classes, each kind of item the catalog does not carry, and a message
that names no item are described in a few plain sentences (what the item is, and what it is
for). A message with words no other rule read is encoded whole and takes the label of its
nearest description: a class, an item the catalog lacks (said so, no class), or nothing. The
"nothing" descriptions stand in for a cutoff: a message is read as an item only where it is
nearer to that item than to a message that names none, on whatever scale the encoder has.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

#: Class → the item's names and uses, in parallel sentences ("something to …") so that their
#: shared words weigh alike; written from what the items are, not from the held-out queries.
# fmt: off
CLASS_DESCRIPTIONS: dict[int, tuple[str, ...]] = {
    0: ("a t-shirt", "a top", "something simple with short sleeves for warm days",
        "something to wear under a jumper or a cardigan", "a light vest top for hot weather"),
    1: ("trousers", "jeans", "something to wear on my legs", "pants for work and weekends",
        "something for my bottom half, below the waist"),
    2: ("a jumper", "a hoodie", "something knitted and warm to wear over a top",
        "a sweater for chilly evenings", "something with long sleeves to pull on over my head"),
    3: ("a dress", "something elegant to wear to a wedding or a party",
        "a one-piece outfit for a night out", "one piece to wear on its own instead of a top and a bottom"),
    4: ("a coat", "a jacket", "something to keep me warm and dry outdoors in rain, wind and cold",
        "an outer layer to wear over everything when I go out"),
    5: ("sandals", "something to wear on my feet at the beach or the pool in summer",
        "open shoes that show my toes"),
    6: ("a shirt", "a blouse", "something smart with buttons and a collar for the office",
        "something with a collar and cuffs to tuck in", "something to wear under a suit jacket"),
    7: ("sneakers", "trainers", "something to wear on my feet for running, the gym and sport",
        "comfortable shoes for walking around town"),
    8: ("a bag", "a handbag", "something to carry my laptop, phone, keys and books",
        "something to carry over my shoulder or to pack for a trip", "something to carry things in"),
    9: ("ankle boots", "something to keep my feet warm and dry in snow, mud and rain",
        "boots for hiking and winter walks", "short boots that cover the ankle"),
}
#: Items the catalog does not carry → sentences describing them.
OUTSIDE_DESCRIPTIONS: dict[str, tuple[str, ...]] = {
    "headwear": ("a hat", "a cap", "something to wear on my head"),
    "jewellery": ("jewellery", "a necklace, a ring or a bracelet", "earrings"),
    "accessories": ("a scarf", "gloves", "a belt or suspenders", "sunglasses", "a watch",
                    "a tie", "cufflinks", "leg warmers", "a keyring"),
    "other shoes": ("brogues", "loafers", "formal leather shoes", "slippers"),
    "swimwear": ("a swimsuit", "swimwear for swimming", "a bikini"),
    "underwear and nightwear": ("underwear", "socks or tights", "pyjamas to sleep in",
                                "a bra"),
    "skirts and shorts": ("a skirt", "shorts"),
}
#: Messages that name no item: the reading's floor.
NO_ITEM_DESCRIPTIONS: tuple[str, ...] = (
    "something", "anything", "something nice", "clothes",
    "in black", "a dark one", "something loose", "with a pattern", "not too expensive",
)
# fmt: on


@dataclass(frozen=True)
class ImpliedItem:
    """The nearest description of a message: a class, or an item the catalog lacks."""

    label: int | None  # a class; None: ``outside`` names what the catalog lacks
    outside: str | None
    description: str  # the nearest description
    score: float  # its cosine similarity to the message


class ImpliedItemReader:
    """Reads the item a whole message implies (see the module docstring).

    Args:
        encode: texts → L2-normalised rows, one a text.
    """

    def __init__(self, encode: Callable[[Sequence[str]], np.ndarray]) -> None:
        self.encode = encode
        groups = (
            *CLASS_DESCRIPTIONS.items(),
            *OUTSIDE_DESCRIPTIONS.items(),
            (None, NO_ITEM_DESCRIPTIONS),
        )
        self.texts = [text for _, texts in groups for text in texts]
        self.labels: list[int | str | None] = [label for label, texts in groups for _ in texts]
        self.vectors = np.asarray(encode(self.texts))  # (D, dim)

    def read(self, text: str) -> ImpliedItem | None:
        """The item ``text`` is nearest to, or None when it is nearest to naming none."""
        scores = self.vectors @ np.asarray(self.encode([text]))[0]  # (D,)
        best = int(scores.argmax())
        label, score = self.labels[best], float(scores[best])
        if label is None:
            return None
        if isinstance(label, str):
            return ImpliedItem(None, label, self.texts[best], score)
        return ImpliedItem(label, None, self.texts[best], score)
