import pytest

from fashiongan.config import load_parameters
from fashiongan.search.intent import IntentDetector, candidate_phrases
from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def detector():
    from fashiongan.generation import text_encoder

    query = load_parameters(REPO_ROOT / "conf")["search_app"].query  # thresholds, max_words
    return IntentDetector(
        text_encoder("bundled", "mean"),
        class_threshold=query.class_threshold,
        attribute_threshold=query.attribute_threshold,
        max_words=query.max_words,
    )


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


@pytest.mark.parametrize(
    ("text", "kind", "label", "steps"),
    [
        ("a coat", "new", 4, {}),
        ("a dark wide coat", "new", 4, {}),
        ("darker", "modify", None, {"tone": -1}),
        ("much darker", "modify", None, {"tone": -2}),
        ("the same but lighter", "modify", None, {"tone": 1}),
        ("but as a dress", "modify", 3, {}),
        ("as a dress", "modify", 3, {}),
        ("wider, with a pattern", "modify", None, {"fit": 1}),
        ("a shade lighter", "modify", None, {"tone": 1}),
        ("with a pattern", "modify", None, {}),
        ("a bag like this", "modify", 8, {}),
        ("start over", "start over", None, {}),
        ("start over, a light bag", "start over", 8, {}),
        ("something nice for the weekend", "new", None, {}),
    ],
)
def test_a_message_modifies_describes_or_starts_over(detector, text, kind, label, steps):
    from fashiongan.search.intent import read_message

    message = read_message(detector, text, has_reference=True)
    assert (message.kind, message.intent.label, message.steps) == (kind, label, steps)
    assert message.reason


def test_a_comparative_is_a_change_not_an_absolute_attribute(detector):
    from fashiongan.search.intent import read_message

    message = read_message(detector, "wider, with a pattern", has_reference=True)
    assert message.intent.fit is None and message.intent.pattern == 1
    assert message.reason == "'wider' changes the reference"
    alone = read_message(detector, "darker", has_reference=False)
    assert alone.kind == "modify" and "no reference" in alone.reason


def test_a_message_sent_with_a_picture_changes_that_picture(detector):
    from fashiongan.search.intent import read_message

    alone = read_message(detector, "a dark coat", has_reference=False)
    shown = read_message(detector, "a dark coat", has_reference=True, with_picture=True)
    assert alone.kind == "new"
    assert shown.kind == "modify" and shown.intent.label == 4 and "picture" in shown.reason
