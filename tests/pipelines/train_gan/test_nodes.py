import pandas as pd
import torch

from fashiongan.pipelines.train_gan.nodes import encode_conditioning


class StandInEncoder:
    """encode_unique like TextEncoder's, with a one-number 'embedding' per distinct text."""

    def __init__(self, **settings):
        pass

    def encode_unique(self, texts, batch_size=256):
        position: dict[str, int] = {}
        index = torch.tensor([position.setdefault(t, len(position)) for t in texts])
        unique = list(position)
        return unique, torch.arange(len(unique), dtype=torch.float32)[:, None], index


def test_encode_conditioning_states_what_each_text_asks(monkeypatch):
    monkeypatch.setattr("fashiongan.text.encoder.TextEncoder", StandInEncoder)
    captions = pd.DataFrame(
        {
            "split": ["train", "train", "test"],
            "index": [1, 0, 0],
            "label": [4, 4, 0],
            "tone": [2, 0, 1],
            "fit": [1, 2, 0],
            "pattern": [0, 1, 0],
            "caption": ["a light coat", "a dark wide patterned coat", "a tee"],
        }
    )
    composed = pd.DataFrame(
        {"index": [0, 1], "reference_index": [1, 0], "modification": ["darker", "lighter"]}
    )
    out = encode_conditioning(captions, composed, ["a coat"], {})
    texts = ["a dark wide patterned coat", "a light coat", "darker", "lighter", "a coat"]
    # rows follow first occurrence: item 0's caption, item 1's, the modifications, the sample
    assert out["caption_index"].tolist() == [0, 1]
    assert out["text_attributes"].tolist()[: len(texts)] == [
        [0, 2, 1],  # dark, wide, patterned
        [2, -1, -1],  # light
        [-1, -1, -1],
        [-1, -1, -1],
        [-1, -1, -1],  # "a coat" states no attribute
    ]
    assert out["item_attributes"].tolist() == [[0, 2, 1], [2, 1, 0]]  # train items 0, 1


def test_encode_conditioning_without_attribute_columns(monkeypatch):
    """FashionIQ's tables have no tone / fit / pattern: no attribute tensors, no error."""
    monkeypatch.setattr("fashiongan.text.encoder.TextEncoder", StandInEncoder)
    captions = pd.DataFrame({"split": ["train"], "index": [0], "caption": ["a red dress"]})
    composed = pd.DataFrame({"index": [0], "reference_index": [0], "modification": ["is red"]})
    out = encode_conditioning(captions, composed, [], {})
    assert "text_attributes" not in out and "item_attributes" not in out
    assert out["caption_index"].tolist() == [0]
