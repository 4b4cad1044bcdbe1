import pandas as pd
import pytest
import torch

from fashiongan.config import load_parameters, overridden
from fashiongan.pipelines.captions.nodes import describe_items, pair_composed_queries
from fashiongan.text.captions import parse_caption
from tests.conftest import REPO_ROOT, draw_items

PARAMS = load_parameters(REPO_ROOT / "conf")["conditional"]


@pytest.fixture(scope="module")
def model_input():
    """Tiny drawn items in [-1, 1]: 60 train, 20 test."""
    labels = {"train": torch.arange(60) % 10, "test": torch.arange(20) % 10}
    out = {}
    for offset, (split, y) in enumerate(labels.items()):
        pixels = torch.from_numpy(draw_items(y.numpy(), seed=offset)).float()
        out[f"{split}_images"] = (pixels / 127.5 - 1).unsqueeze(1)
        out[f"{split}_labels"] = y
    return out


@pytest.fixture(scope="module")
def described(model_input):
    return describe_items(model_input, PARAMS.captions)


def test_describe_items_measures_and_captions_every_split(described, model_input):
    attributes, captions = described
    assert set(captions["split"]) == {"train", "test"}
    assert (captions["split"] == "train").sum() == 60  # per_item 1
    assert {"tone_cuts", "fit_cuts", "pattern_cuts", "train_tone", "test_pattern"} <= set(
        attributes
    )
    train = captions[captions["split"] == "train"]
    assert train["tone"].tolist() == attributes["train_tone"].tolist()
    # a caption never contradicts its item: what it states is the item's attribute
    for row in train.itertuples():
        stated = parse_caption(row.caption)
        assert stated["label"] in (None, row.label)
        assert stated["tone"] in (None, row.tone)
    again = describe_items(model_input, PARAMS.captions)[1]
    pd.testing.assert_frame_equal(captions, again)
    other = describe_items(model_input, overridden(PARAMS.captions, seed=7))[1]
    assert not captions["caption"].equals(other["caption"])


def test_composed_queries_pair_every_training_item(described):
    _, captions = described
    composed = pair_composed_queries(captions, PARAMS.composed)
    assert composed["index"].tolist() == list(range(60))
    assert (composed["reference_index"] != composed["index"]).all()
    assert composed["reference_index"].between(0, 59).all()
    assert composed["modification"].str.len().min() > 0
    pd.testing.assert_frame_equal(composed, pair_composed_queries(captions, PARAMS.composed))
    labels = captions[captions["split"] == "train"].set_index("index")["label"]
    same = labels[composed["reference_index"]].to_numpy() == labels[composed["index"]].to_numpy()
    always = pair_composed_queries(captions, overridden(PARAMS.composed, same_class_prob=1.0))
    # same class unless the draw hit the item itself (then its neighbour, 1 in 6 here)
    always_same = labels[always["reference_index"]].to_numpy() == labels[always["index"]].to_numpy()
    assert 0 < same.mean() < 0.8 < always_same.mean()  # 0.5: both kinds of query


def test_few_variants_bound_the_texts(described):
    _, captions = described
    one = pair_composed_queries(captions, overridden(PARAMS.composed, variants=1))
    four = pair_composed_queries(captions, overridden(PARAMS.composed, variants=4))
    assert one["modification"].nunique() <= four["modification"].nunique()
