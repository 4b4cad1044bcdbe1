import pandas as pd
import pytest
import torch

from fashiongan.config import load_parameters, overridden
from fashiongan.pipelines.train_gan.nodes import encode_conditioning
from fashiongan.text.encoder import TextEncoder
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


@pytest.mark.parametrize("head", ["attention", "none"])
def test_train_conditional_passes_what_shapes_the_run(monkeypatch, head):
    """The encoder's settings (its head too, as conf/base has it) and FashionIQ's data
    fingerprint reach the checkpoint fingerprint; the generator's config names the encoder
    saved beside it. The real bundled MiniLM, loaded offline: only the trainer is stood in."""
    from fashiongan.pipelines.train_gan import nodes

    calls = {}

    def trainer(images, labels, conditioning, params, sample_captions, text_encoder, **extra):
        calls.update(extra, params=params, sample_captions=sample_captions, encoder=text_encoder)
        return "G", "D", "E", [{"step": 1, "d_loss": 0.5}]

    monkeypatch.setattr(nodes, "train_conditional_gan", trainer)
    training = load_parameters(REPO_ROOT / "conf")["conditional"].training
    encoder = overridden(ENCODER, head=head, head_pools=3, device="cpu")
    model_input = {
        "train_images": torch.zeros(2, 1, 28, 28),
        "train_labels": torch.zeros(2, dtype=torch.long),
        "data_fingerprint": torch.tensor([2, 12345]),
    }
    out = nodes.train_conditional(model_input, {}, training, encoder, ("a coat",), "tuned")
    assert out[:3] == ("G", "D", "E") and out[5]["final_d_loss"] == 0.5
    assert out[3] is calls["encoder"] and out[3].head_kind == head  # saved beside G
    assert calls["params"] == overridden(
        training, checkpoint_dir=f"{training.checkpoint_dir}/tuned"
    )
    assert calls["sample_captions"] == ["a coat"]
    assert calls["model_extra"] == {"text_encoder": "./text_encoder", "text_pooling": "mean"}
    text_encoder = {"base": "bundled", "trainable_top_layers": 0, "max_length": 64, "normalize": True}  # fmt: skip
    if head == "attention":  # a run with another head is another run; none keeps old hashes
        text_encoder |= {"head": "attention", "head_pools": 3}
    assert calls["fingerprint_extra"] == {
        "text_encoder": text_encoder,
        "data_fingerprint": "2-12345",
    }
    del model_input["data_fingerprint"]  # Fashion-MNIST: no data fingerprint, as before
    nodes.train_conditional(model_input, {}, training, encoder, ("a coat",), "tuned")
    assert "data_fingerprint" not in calls["fingerprint_extra"]


def test_encode_conditioning_caches_the_states_the_default_head_reads():
    """conf/base's head over the real MiniLM: the frozen layers' states come with the
    embeddings (training runs only the head), and the embeddings are what queries get."""
    captions = pd.DataFrame(
        {"split": ["train", "train"], "index": [0, 1], "caption": ["a dark coat", "a bag"]}
    )
    composed = pd.DataFrame(
        {"index": [0, 1], "reference_index": [1, 0], "modification": ["as a coat", "a bag"]}
    )
    assert ENCODER.head == "attention"
    out = encode_conditioning(
        captions, composed, ("a dark coat",), overridden(ENCODER, device="cpu")
    )
    assert out["text_embeddings"].shape[0] == 3  # "a bag" and "a dark coat" are encoded once
    assert out["text_hidden"].shape[:2] == out["text_mask"].shape and len(out["text_mask"]) == 3
    assert out["text_hidden_top_layers"].item() == 0
    texts = ["a dark coat", "a bag", "as a coat"]
    expected = TextEncoder.from_params(overridden(ENCODER, device="cpu")).encode(texts)
    torch.testing.assert_close(out["text_embeddings"], expected, atol=1e-5, rtol=0)


def test_training_mlflow_metrics_keep_the_names_at_the_last_step():
    from fashiongan.pipelines.train_gan.nodes import training_mlflow_metrics

    summary = {"final_d_loss": 0.5, "wall_time_s": 3.25, "iterations": 20}
    assert training_mlflow_metrics(summary, "baseline/") == {
        "baseline/final_d_loss": {"value": 0.5, "step": 20},
        "baseline/wall_time_s": {"value": 3.25, "step": 20},
    }
