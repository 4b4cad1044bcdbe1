"""One input contract for every entry point: the CLI, the app's handlers and the JSON API.

:func:`check_request` turns whatever a caller sent (strings from a form or a query string,
numbers from JSON, a path or bytes for a picture) into a :class:`SearchRequest`, or raises
:class:`SearchInputError` with one line for the shopper and the field at fault, which the API
returns as ``{"error": …, "field": …}``. The limits are the ``search_app.query`` settings.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from fashiongan.config import SearchQuery
from fashiongan.images import ImageInputError, open_image

EXAMPLE_QUERY = "a dark ankle boot"
MAX_SEED = 2**63 - 1
#: A word in any script: a letter or a digit ("une veste", "Turnschuhe", "42").
_READABLE = re.compile(r"[^\W_]")


class SearchInputError(ValueError):
    """A request the service cannot answer; the message is one line meant for the user.

    Attributes:
        field: the request field at fault (``text``, ``image``, ``k``, …), or None.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    def to_dict(self) -> dict[str, Any]:
        """The JSON API's error body."""
        return {"error": str(self), "field": self.field}


@dataclass(frozen=True)
class SearchRequest:
    """A checked request: text cleaned, counts in range, the picture decoded."""

    text: str | None
    image: Image.Image | None
    k: int
    n_images: int
    seed: int
    conversation: str | None = None
    pick: str | None = None
    model: str | None = None


def check_request(
    query: SearchQuery,
    text: Any = None,
    image: Any = None,
    *,
    k: Any = None,
    n_images: Any = None,
    seed: Any = None,
    conversation: Any = None,
    pick: Any = None,
    model: Any = None,
) -> SearchRequest:
    """The request, checked against the ``search_app.query`` limits (None: the default).

    Raises:
        SearchInputError: the first field at fault, in one line.
    """
    request = SearchRequest(
        text=check_text(text, query.max_text_chars),
        image=check_image(image),
        k=_count("k", k, query.k, query.max_k),
        n_images=_count("n_images", n_images, query.n_images, query.max_images),
        seed=_count("seed", seed, query.seed, MAX_SEED, low=0),
        conversation=_optional_text("conversation", conversation),
        pick=_optional_text("reference_id", pick),
        model=_optional_text("model", model),
    )
    if request.text is None and request.image is None and request.pick is None:
        raise SearchInputError(
            f"Type what you are looking for (e.g. '{EXAMPLE_QUERY}') or upload a picture.", "text"
        )
    return request


def check_text(text: Any, max_chars: int) -> str | None:
    """The text with control characters dropped and spaces collapsed; None when nothing is left.

    Raises:
        SearchInputError: not a string, longer than ``max_chars``, or no readable word in it.
    """
    if text is None:
        return None
    if not isinstance(text, str):
        raise SearchInputError(f"the text must be a string, got {type(text).__name__}", "text")
    if len(text) > max_chars:
        raise SearchInputError(
            f"the text is {len(text):,} characters long; at most {max_chars:,} are read: "
            "describe the item in a sentence or two",
            "text",
        )
    printable = "".join(" " if unicodedata.category(c).startswith("C") else c for c in text)
    cleaned = " ".join(printable.split())
    if not cleaned:
        return None
    if not _READABLE.search(cleaned):
        raise SearchInputError(
            f"no words I can read in '{cleaned[:40]}': describe the item in words, "
            f"e.g. '{EXAMPLE_QUERY}'",
            "text",
        )
    return cleaned


def check_image(image: Any) -> Image.Image | None:
    """The decoded picture (a path, bytes or a PIL image), or None.

    Raises:
        SearchInputError: not a readable image (the reason in one line).
    """
    if image is None or image == "":
        return None
    if not isinstance(image, str | Path | bytes | Image.Image):
        raise SearchInputError(f"the image must be a file, got {type(image).__name__}", "image")
    try:
        return open_image(image)
    except ImageInputError as err:
        raise SearchInputError(str(err), "image") from err
    except (OSError, ValueError) as err:  # a decoder failing late
        raise SearchInputError(
            f"the image could not be read ({type(err).__name__})", "image"
        ) from err


def _count(name: str, value: Any, default: int, high: int, low: int = 1) -> int:
    """A whole number in [low, high] (None: ``default``); strings of digits are accepted."""
    if value is None or value == "":
        return default
    number = _whole(value)
    if number is None or not low <= number <= high:
        raise SearchInputError(
            f"{name} must be a whole number between {low} and {high:,}, got {_shown(value)}",
            name,
        )
    return number


def _whole(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d{1,25}\s*", value):
        return int(value)
    return None


def _optional_text(name: str, value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or len(value) > 200:
        raise SearchInputError(f"{name} must be a short string, got {_shown(value)}", name)
    return value.strip() or None


def _shown(value: Any, limit: int = 20) -> str:
    """``value`` quoted for a message, cut with an ellipsis past ``limit`` characters (a cut
    2**70 without one reads as another number)."""
    text = str(value)
    return repr(text if len(text) <= limit else f"{text[:limit]}…")
