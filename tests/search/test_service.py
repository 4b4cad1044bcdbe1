import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from fashiongan.search.contract import SearchInputError
from fashiongan.text.captions import CLASS_SYNONYMS


def _png(mode: str = "L", size: int = 28, value: int = 128) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (size, size), value if mode in ("L", "I;16") else (value,) * len(mode)).save(
        buffer, format="PNG" if mode != "CMYK" else "JPEG"
    )
    return buffer.getvalue()


def test_text_query_detects_intent_generates_and_ranks(service):
    result = service.search("black running trainers, please", k=5)
    assert result.intent.label == 7 and result.intent.tone == 0
    assert result.generator_text == "a dark sneaker"  # the intent, in the caption grammar
    assert any("sneaker" in word for word in result.keywords)
    assert result.images.shape == (2, 1, 28, 28)
    assert [hit["rank"] for hit in result.hits] == [1, 2, 3, 4, 5]
    scores = [hit["score"] for hit in result.hits]
    assert scores == sorted(scores, reverse=True)
    assert {"id", "title", "category", "label", "row"} <= set(result.hits[0])
    payload = json.loads(json.dumps(result.to_dict()))
    assert payload["results"][0]["id"].startswith("item-")
    assert set(payload["timings_ms"]) >= {"intent", "generate", "embed", "search", "total"}
    assert payload["conversation"]["decision"] == "new"
    assert payload["conversation"]["wanted"]["caption"] == "a dark sneaker"


@pytest.mark.parametrize("label", range(10))
def test_text_query_finds_the_asked_class_with_a_generator_that_draws_it(planted_service, label):
    """Every synonym of every class → the top 5 are all of that class (chance: 0.1)."""
    for synonym in CLASS_SYNONYMS[label]:
        result = planted_service.search(f"I want a {synonym}", k=5)
        assert result.intent.label == label, synonym
        assert [hit["label"] for hit in result.hits] == [label] * 5, synonym


def test_relevance_follows_the_drawing_alone_and_the_asked_class_when_fused(planted_service):
    """Image alone (no text fusion, no class boost): a generator drawing the next class moves
    every hit there. Fused with the text and boosted to the detected class (conf/base), the
    asked class wins even over a generator that gets it wrong."""
    generator = planted_service.path.generators["planted"]
    generator.shift = 1
    try:
        image_only = planted_service.search("black running trainers", k=5).hits
        fused = planted_service.with_query(fuse_text=True, class_boost=4.0).search(
            "black running trainers", k=5
        )
    finally:
        generator.shift = 0
    fused = fused.hits
    assert [hit["label"] for hit in image_only] == [8] * 5
    assert [hit["label"] for hit in fused] == [7] * 5


def test_same_query_same_seed_is_deterministic(service):
    first = service.search("a light dress", seed=3)
    second = service.search("a light dress", seed=3)
    assert torch.equal(first.images, second.images)
    assert first.hits == second.hits
    assert not torch.equal(first.images, service.search("a light dress", seed=4).images)


def test_a_message_with_nothing_readable_says_which_words_and_gives_an_example(service):
    with pytest.raises(
        SearchInputError, match="I could not read .*'xqzw'.*e.g. 'a dark ankle boot'"
    ):
        service.search("xqzw blorft")


@pytest.mark.parametrize("text", ["👗🔥🔥", "\x00\x07 \x1b"])
def test_text_without_words_is_refused_in_one_line(service, text):
    with pytest.raises(SearchInputError, match="no words I can read|Type what you are looking"):
        service.search(text)


@pytest.mark.parametrize("text", ["", "   \n\t "])
def test_empty_query_is_one_clear_error(service, text):
    with pytest.raises(SearchInputError, match="Type what you are looking for"):
        service.search(text)


def test_text_over_the_tokenizer_limit_is_truncated_and_said(service):
    result = service.search("a dark ankle boot " + "with many details " * 60)
    assert result.intent.label == 9
    assert any("tokens long" in notice and "first 64" in notice for notice in result.notices)
    with pytest.raises(SearchInputError, match="5,000 characters long; at most 2,000") as raised:
        service.search("x" * 5000)
    assert raised.value.field == "text" and "\n" not in str(raised.value)


def test_image_only_query_embeds_the_picture(service):
    # An item's own picture must come back first: query by example.
    pixels = service.catalog.thumbnails[7, 0].numpy()
    result = service.search(image=Image.fromarray(pixels))
    assert result.images is None and result.intent is None
    assert result.hits[0]["row"] == 7 and result.hits[0]["score"] == pytest.approx(1.0, abs=1e-3)


def test_a_modification_of_a_picture_draws_the_changed_caption_or_the_composed_query(service):
    """The picture's class comes from its nearest items; "darker" from an unknown tone lands on
    dark. ``modify_generates: composed`` sends the typed text with the picture instead."""
    result = service.search("the same but darker", image=_png())
    assert result.had_image and result.conversation["decision"] == "modify"
    assert result.generator_text.startswith("a dark ") and result.images.shape[0] == 2
    assert result.conversation["wanted"]["tone"] == 0
    composed = service.with_query(modify_generates="composed").search(
        "the same but darker", image=_png()
    )
    assert composed.generator_text == "the same but darker" and composed.images.shape[0] == 2


def test_a_first_message_that_modifies_is_a_new_search_for_what_it_says(service):
    """No refusal: "the same but lighter" with nothing to change searches light items."""
    lighter = service.search("the same but lighter")
    assert lighter.conversation["decision"] == "new" and lighter.hits
    assert "nothing to change yet, so a new search" in lighter.conversation["reason"]
    assert (
        lighter.conversation["wanted"]["tone"] == 2
        and lighter.conversation["wanted"]["label"] is None
    )
    assert service.search("as a dress").conversation["wanted"]["label"] == 3  # names a class


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (b"this is not an image", "not a readable image"),
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "not a readable image"),
    ],
    ids=["text", "empty", "truncated-png"],
)
def test_bad_uploads_are_refused_and_the_service_keeps_serving(service, image, message):
    with pytest.raises(SearchInputError, match=message):
        service.search("a bag", image=image)
    assert service.search("a bag").hits  # still serving


@pytest.mark.parametrize(
    ("mode", "said"), [("RGBA", "RGBA image was converted"), ("CMYK", "CMYK image")]
)
def test_unsupported_modes_are_converted(service, mode, said):
    result = service.search(image=_png(mode))
    assert result.hits and any(said in notice for notice in result.notices)


def test_sixteen_bit_image_is_converted(service):
    buffer = io.BytesIO()
    Image.fromarray(np.arange(28 * 28, dtype=np.uint16).reshape(28, 28) * 80).save(
        buffer, format="PNG"
    )
    result = service.search(image=buffer.getvalue())
    assert result.hits and any("converted to L" in notice for notice in result.notices)


def test_decompression_bomb_and_huge_image_are_refused(service, monkeypatch):
    import fashiongan.images as images

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 28×28 = 784 > 2×100: a "bomb"
    with pytest.raises(SearchInputError, match="decompression bomb"):
        service.search(image=_png())
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000_000)
    monkeypatch.setattr(images, "MAX_PIXELS", 500)
    with pytest.raises(SearchInputError, match="too large"):
        service.search(image=_png())
    monkeypatch.setattr(images, "MAX_FILE_BYTES", 10)
    with pytest.raises(SearchInputError, match="over 0 MB"):
        service.search(image=_png())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0}, "k must be a whole number between 1 and 100"),
        ({"k": "abc"}, "k must be a whole number"),
        ({"seed": 2**70}, "seed must be a whole number"),
        ({"n_images": 99}, "n_images must be a whole number between 1 and 16"),
        ({"model": "nope"}, "unknown model 'nope'"),
    ],
)
def test_bad_options_are_one_line_errors(service, kwargs, message):
    with pytest.raises(SearchInputError, match=message):
        service.search("a coat", **kwargs)


def test_unconditional_model_samples_and_says_so(service):
    result = service.search("a coat", model="baseline")
    assert result.images is not None and result.hits
    assert any("unconditional" in notice for notice in result.notices)
    both = service.compare("a coat", k=3)
    assert list(both) == ["conditional", "baseline"] and all(
        len(r.hits) == 3 for r in both.values()
    )


def test_generate_tab_needs_text_for_conditional_models(service):
    images, _ = service.generate("a slim coat", n_images=3, seed=1)
    assert images.shape == (3, 1, 28, 28) and images.abs().max() <= 1.0
    with pytest.raises(SearchInputError, match="Type a caption"):
        service.generate(None, _png())


def test_service_refuses_an_index_of_another_catalog(model_paths):
    from fashiongan.datasets.safetensors import load_module
    from fashiongan.search.catalog import Catalog
    from fashiongan.search.index import build_index
    from fashiongan.search.service import SearchService
    from tests.search.conftest import query_settings, tiny_items

    table, pixels = tiny_items(10)
    with pytest.raises(ValueError, match="rebuild the index"):
        SearchService(
            {"c": load_module(model_paths["generator"])},
            load_module(model_paths["embedder"]),
            build_index(np.eye(8, dtype=np.float32)),
            Catalog(table, pixels),
            query_settings(),
        )


def test_settings_come_from_the_typed_search_app_block(service):
    from fashiongan.config import load_parameters, overridden

    query = overridden(load_parameters()["search_app"].query, k=3, class_threshold=0.7)
    assert (query.k, query.n_images, query.class_threshold) == (3, 4, 0.7)
    # the app ranks with the fused query and the class boost; modifications draw the caption
    assert (query.fuse_text, query.class_boost, query.modify_generates) == (True, 4.0, "caption")
    with pytest.raises(Exception, match="modify_generates"):
        overridden(query, modify_generates="both")
    with pytest.raises(Exception, match="max_k"):
        overridden(query, k=query.max_k + 1)
    other = service.with_query(k=2)
    assert len(other.search("a coat").hits) == 2 and service.query.k == 5  # fixed per service


def test_a_bad_search_app_key_is_one_line_naming_it(tmp_path):
    import shutil

    from fashiongan.search.loading import load_settings

    shutil.copytree("conf/base", tmp_path / "conf/base")
    (tmp_path / "conf/local").mkdir()
    (tmp_path / "conf/local/parameters.yml").write_text("search_app:\n  query:\n    top_k: 3\n")
    with pytest.raises(SearchInputError) as raised:
        load_settings(tmp_path / "conf")
    message = str(raised.value)
    assert "search_app.query.top_k: unknown key" in message and "\n" not in message
    settings, catalog = load_settings("conf", env="base")
    assert settings.port == 7860 and "search_faiss_index" in catalog


class _LockCheckingEncoder:
    """The sentence encoder, noting each call and each one made without its encoder_lock."""

    CHECKED = ("encode", "encode_unique", "encode_with_info", "tokenize")

    def __init__(self, encoder) -> None:
        self._encoder = encoder
        self.calls: list[str] = []
        self.unlocked: list[str] = []

    def __getattr__(self, name: str):
        attribute = getattr(self._encoder, name)
        if name not in self.CHECKED:
            return attribute

        def checked(*args, **kwargs):
            from fashiongan.search.query import encoder_lock

            self.calls.append(name)
            if not encoder_lock(self).locked():
                self.unlocked.append(name)
            return attribute(*args, **kwargs)

        return checked


def test_the_generate_tab_encodes_under_the_encoders_lock(model_paths):
    """The Generate tab shares the search turns' sentence encoder, so it holds the same lock
    (a Hugging Face tokenizer used by two threads at once fails), and draws what it drew alone."""
    from fashiongan.datasets.safetensors import load_module
    from fashiongan.generation import generate, text_encoder
    from fashiongan.pixels import from_uint8
    from fashiongan.search.catalog import Catalog
    from fashiongan.search.index import build_index
    from fashiongan.search.service import SearchService
    from tests.search.conftest import query_settings, tiny_items

    table, pixels = tiny_items()
    generator = load_module(model_paths["generator"])
    embedder = load_module(model_paths["embedder"])
    with torch.no_grad():
        vectors = embedder(from_uint8(pixels)).numpy()
    config = generator.config
    encoder = _LockCheckingEncoder(text_encoder(config.text_encoder, config.text_pooling))
    service = SearchService(
        {"conditional": generator},
        embedder,
        build_index(vectors),
        Catalog(table, pixels),
        query_settings(k=5, n_images=2, fuse_text=False, class_boost=0.0),
        encoder=encoder,
    )
    encoder.calls.clear(), encoder.unlocked.clear()  # building the reading encodes its words
    images, _ = service.generate("a slim coat", n_images=2, seed=1)
    assert "encode" in encoder.calls and encoder.unlocked == []
    assert torch.equal(images, generate(generator, 2, 1, "a slim coat"))


@pytest.mark.parametrize(("text", "label"), [("not a bag", 8), ("anything but a dress", 3)])
def test_a_message_that_only_excludes_draws_nothing_and_shows_every_other_item(
    planted_service, text, label
):
    """Drawing the words as typed would draw the excluded item (a bag for "not a bag")."""
    result = planted_service.search(text, k=5)
    assert result.generator_text is None and result.intent.excluded == {"class": {label}}
    assert len(result.hits) == 5 and label not in [hit["label"] for hit in result.hits]
    asked = planted_service.search(text.split()[-1], k=5)  # "bag": the catalog has them
    assert [hit["label"] for hit in asked.hits] == [label] * 5
