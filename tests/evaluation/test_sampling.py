"""Sampling every model for the same test items: conditional ones from the items' captions."""

import pandas as pd
import pytest
import torch

from fashiongan.evaluation.sampling import (
    caption_texts,
    catalog_captions,
    encode_texts,
    item_captions,
    sample_models,
    sample_subset,
)
from fashiongan.text.captions import parse_caption


def _generators(tiny, names=("baseline", "conditional", "vae")):
    return {name: tiny["modules"][name]["generator"] for name in names}


def test_sample_models_conditional_asks_for_the_test_captions(tiny):
    model_input = tiny["model_input"]
    samples = sample_models(
        _generators(tiny), model_input["test_labels"], tiny["captions"], None, 0, 32, "cpu"
    )
    n_test = len(model_input["test_labels"])
    for name, sample in samples.items():
        assert sample["images"].shape == (n_test, 1, 28, 28), name
        assert sample["images"].abs().max() <= 1.0
        assert torch.equal(sample["index"], torch.arange(n_test))
    cond = samples["conditional"]
    assert torch.equal(cond["labels"], model_input["test_labels"].long())
    assert cond["text"].shape == (n_test, 384)
    first = parse_caption(catalog_captions(tiny["captions"]).loc[0, "caption"])
    assert cond["tone"][0] == (first["tone"] if first["tone"] is not None else -1)
    assert (samples["baseline"]["labels"] == -1).all() and "text" not in samples["vae"]
    assert (samples["vae"]["pattern"] == -1).all()
    again = sample_models(
        _generators(tiny, ["baseline"]), model_input["test_labels"], tiny["captions"], None, 0,
        32, "cpu",
    )  # fmt: skip
    assert torch.equal(again["baseline"]["images"], samples["baseline"]["images"])  # seeded
    other_seed = sample_models(
        _generators(tiny, ["baseline"]), model_input["test_labels"], tiny["captions"], None, 1,
        32, "cpu",
    )  # fmt: skip
    assert not torch.equal(other_seed["baseline"]["images"], samples["baseline"]["images"])


def test_sample_models_on_a_subset_and_with_nothing_to_sample(tiny):
    labels = tiny["model_input"]["test_labels"]
    samples = sample_models(_generators(tiny, ["vae"]), labels, tiny["captions"], 20, 3, 8, "cpu")
    index = samples["vae"]["index"]
    assert len(index) == 20 and torch.equal(index, index.sort().values)
    assert torch.equal(index, sample_subset(len(labels), 20, 3))
    with pytest.raises(ValueError, match="no generator to evaluate"):
        sample_models({}, labels, tiny["captions"], None, 0, 8, "cpu")


def test_sample_subset_all_or_a_sorted_seeded_draw():
    assert torch.equal(sample_subset(10, None, 0), torch.arange(10))
    assert torch.equal(sample_subset(10, 50, 0), torch.arange(10))
    drawn = sample_subset(100, 10, 0)
    assert len(set(drawn.tolist())) == 10 and torch.equal(drawn, sample_subset(100, 10, 0))
    assert not torch.equal(drawn, sample_subset(100, 10, 1))
    with pytest.raises(ValueError, match=">= 6"):
        sample_subset(100, 5, 0)


def test_item_captions_keep_the_first_caption_of_each_item_in_order():
    captions = pd.DataFrame(
        {
            "split": ["test", "test", "train", "test", "test"],
            "index": [1, 0, 0, 1, 2],
            "caption": ["b first", "a", "train a", "b second", "c"],
        }
    )
    assert item_captions(captions)["caption"].tolist() == ["a", "b first", "c"]
    assert caption_texts(captions, torch.tensor([2, 0])) == ["c", "a"]
    assert caption_texts(captions, [0], split="train") == ["train a"]


def test_encode_texts_refuses_a_model_of_another_text_width(tiny):
    config = tiny["modules"]["conditional"]["generator"].config
    assert encode_texts(config, ["a dress", "a bag", "a dress"]).shape == (3, config.text_dim)

    class Wide:
        text_encoder, text_pooling, text_dim = config.text_encoder, config.text_pooling, 7

    with pytest.raises(ValueError, match="text_dim=7"):
        encode_texts(Wide(), ["a dress"])
