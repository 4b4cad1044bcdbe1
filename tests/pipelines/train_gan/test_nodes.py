import pandas as pd
import torch

from fashiongan.config import load_parameters
from fashiongan.pipelines.train_gan.nodes import encode_conditioning
from tests.conftest import REPO_ROOT

ENCODER = load_parameters(REPO_ROOT / "conf")["conditional"].text_encoder


class StandInEncoder:
    """encode_unique like TextEncoder's, with a one-number 'embedding' per distinct text."""

    trainable_top_layers, trainable, head = 0, False, None

    @classmethod
    def from_params(cls, params, device=None):
        assert params is ENCODER
        return cls()

    def encode_unique(self, texts, batch_size=256):
        position: dict[str, int] = {}
        index = torch.tensor([position.setdefault(t, len(position)) for t in texts])
        unique = list(position)
        return unique, torch.arange(len(unique), dtype=torch.float32)[:, None], index


def test_encode_conditioning_states_what_each_text_asks(monkeypatch):
    monkeypatch.setattr("fashiongan.pipelines.train_gan.nodes.TextEncoder", StandInEncoder)
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
    out = encode_conditioning(captions, composed, ("a coat",), ENCODER)
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
    monkeypatch.setattr("fashiongan.pipelines.train_gan.nodes.TextEncoder", StandInEncoder)
    captions = pd.DataFrame({"split": ["train"], "index": [0], "caption": ["a red dress"]})
    composed = pd.DataFrame({"index": [0], "reference_index": [0], "modification": ["is red"]})
    out = encode_conditioning(captions, composed, (), ENCODER)
    assert "text_attributes" not in out and "item_attributes" not in out
    assert out["caption_index"].tolist() == [0]


def test_train_conditional_passes_what_shapes_the_run(monkeypatch):
    """The encoder's settings and FashionIQ's data fingerprint reach the checkpoint fingerprint;
    the generator's config names the encoder saved beside it."""
    from fashiongan.pipelines.train_gan import nodes

    class Encoder(StandInEncoder):
        trainable_top_layers, max_length, normalize, pooling = 0, 64, True, "mean"

    calls = {}

    def trainer(images, labels, conditioning, params, sample_captions, text_encoder, **extra):
        calls.update(extra, params=params, sample_captions=sample_captions)
        return "G", "D", "E", [{"step": 1, "d_loss": 0.5}]

    monkeypatch.setattr(nodes, "TextEncoder", Encoder)
    monkeypatch.setattr(nodes, "train_conditional_gan", trainer)
    training = load_parameters(REPO_ROOT / "conf")["conditional"].training
    model_input = {
        "train_images": torch.zeros(2, 1, 28, 28),
        "train_labels": torch.zeros(2, dtype=torch.long),
        "data_fingerprint": torch.tensor([2, 12345]),
    }
    out = nodes.train_conditional(model_input, {}, training, ENCODER, ("a coat",))
    assert out[:3] == ("G", "D", "E") and out[5]["final_d_loss"] == 0.5
    assert calls["params"] is training and calls["sample_captions"] == ["a coat"]
    assert calls["model_extra"] == {"text_encoder": "./text_encoder", "text_pooling": "mean"}
    assert calls["fingerprint_extra"] == {
        "text_encoder": {
            "base": "bundled",
            "trainable_top_layers": 0,
            "max_length": 64,
            "normalize": True,
        },
        "data_fingerprint": "2-12345",
    }
    del model_input["data_fingerprint"]  # Fashion-MNIST: no data fingerprint, as before
    nodes.train_conditional(model_input, {}, training, ENCODER, ("a coat",))
    assert "data_fingerprint" not in calls["fingerprint_extra"]


def test_training_mlflow_metrics_keep_the_names_at_the_last_step():
    from fashiongan.pipelines.train_gan.nodes import training_mlflow_metrics

    summary = {"final_d_loss": 0.5, "wall_time_s": 3.25, "iterations": 20}
    assert training_mlflow_metrics(summary, "baseline/") == {
        "baseline/final_d_loss": {"value": 0.5, "step": 20},
        "baseline/wall_time_s": {"value": 3.25, "step": 20},
    }
