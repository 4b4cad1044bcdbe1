import pytest

from fashiongan.search.intent import IntentDetector, candidate_phrases


@pytest.fixture(scope="module")
def detector():
    from fashiongan.generation import text_encoder

    return IntentDetector(text_encoder("bundled", "mean"))


@pytest.mark.parametrize(
    ("query", "label", "tone", "fit", "pattern"),
    [
        # words the caption grammar never writes: found by meaning, not by keyword
        ("trainers", 7, None, None, None),
        ("running shoes for the gym", 7, None, None, None),
        ("tennis shoes for jogging", 7, None, None, None),
        ("I want black skinny jeans", 1, 0, 0, None),
        ("an oversized striped hoodie", 2, None, 2, 1),
        ("a purse", 8, None, None, None),
        ("a gown in a pale shade", 3, 2, None, None),
        ("flip flops", 5, None, None, None),
        # the grammar's own words and phrases
        ("show me a dark ankle boot", 9, 0, None, None),
        ("light trousers without a pattern", 1, 2, None, 0),
        ("a slim coat with a print", 4, None, 0, 1),
        ("hello there", None, None, None, None),
    ],
)
def test_detects_classes_and_attributes_semantically(detector, query, label, tone, fit, pattern):
    intent = detector.detect(query)
    assert (intent.label, intent.tone, intent.fit, intent.pattern) == (label, tone, fit, pattern)


def test_keywords_say_what_was_read_and_how_sure(detector):
    intent = detector.detect("black skinny jeans")
    found = {k.slot: k for k in intent.keywords}
    assert found["class"].phrase == "jeans" and found["class"].name == "trousers"
    assert 0.6 <= found["class"].score < 1.0  # semantic, not exact
    assert found["tone"].score == 1.0 and found["tone"].matched == "black"
    assert found["class"].describe().startswith("jeans → trousers (")
    assert intent.caption() == "dark slim trousers"
    assert intent.to_dict()["keywords"][0]["text"] == found["class"].describe()


def test_caption_is_in_the_training_grammar(detector):
    assert detector.detect("a wide patterned sweater, medium tone").caption() == (
        "a medium-tone wide patterned pullover"
    )
    assert detector.detect("an ankle boot").caption() == "an ankle boot"
    assert detector.detect("in a dark tone").caption() is None  # no class, no caption


def test_longer_exact_phrase_wins_and_phrases_do_not_overlap(detector):
    intent = detector.detect("a dark ankle boot")
    assert [k.phrase for k in intent.keywords] == ["ankle boot", "dark"]


def test_long_queries_are_read_up_to_max_words(detector):
    intent = detector.detect("please " * 40 + "a dark coat")
    assert intent.words_used == 32 and intent.label is None


def test_candidate_phrases_skip_stopword_edges():
    phrases = [p for _, _, p in candidate_phrases(["i", "want", "a", "dark", "coat"])]
    assert phrases == ["dark", "coat", "dark coat"]
