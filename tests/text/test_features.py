import pandas as pd
import pytest
import torch

from fashiongan.attributes import assign
from fashiongan.config import load_parameters, overridden
from fashiongan.datasets import TensorDictDataset
from fashiongan.text.captions import parse_caption
from fashiongan.text.encoder import TextEncoder
from fashiongan.text.features import CAPTION_COLUMNS, caption_dataset, embed_captions
from tests.conftest import REPO_ROOT
from tests.text.conftest import random_items

ATTRIBUTES = load_parameters(REPO_ROOT / "conf")[
    "conditional"
].captions.attributes  # per_item 1, drop_prob 0.25, phrasings_per_key 16
ENCODER = load_parameters(REPO_ROOT / "conf")["conditional"].text_encoder


@pytest.fixture(scope="module")
def model_input() -> dict[str, torch.Tensor]:
    train_images, train_labels = random_items(200, seed=0)
    validation_images, validation_labels = random_items(40, seed=1)
    test_images, test_labels = random_items(50, seed=2)
    return {
        "train_images": train_images,
        "train_labels": train_labels,
        "validation_images": validation_images,
        "validation_labels": validation_labels,
        "test_images": test_images,
        "test_labels": test_labels,
    }


def test_caption_dataset_tables_and_tensors(model_input, tmp_path):
    out = caption_dataset(model_input, overridden(ATTRIBUTES, per_item=2), seed=0)
    table, tensors = out["captions"], out["attributes"]
    assert tuple(table.columns) == CAPTION_COLUMNS
    assert table.groupby("split").size().to_dict() == {"train": 400, "validation": 80, "test": 100}
    assert table["index"].tolist()[:4] == [0, 0, 1, 1]
    for split, n in (("train", 200), ("validation", 40), ("test", 50)):
        for name in ("tone", "fit", "pattern"):
            assert tensors[f"{split}_{name}"].shape == (n,)
            assert tensors[f"{split}_{name}"].dtype == torch.int64
        rows = table[table["split"] == split]
        assert (
            rows["label"].to_numpy() == model_input[f"{split}_labels"].repeat_interleave(2).numpy()
        ).all()
    for row in table.itertuples():  # every caption says only true things
        parsed = parse_caption(row.caption)
        assert parsed["label"] == row.label
        for name in ("tone", "fit", "pattern"):
            assert parsed[name] in (None, getattr(row, name)), row.caption

    # Saved as the catalog would: the loaded tensors reproduce the attributes of any images.
    dataset = TensorDictDataset(str(tmp_path / "caption_attributes.safetensors"))
    dataset.save(tensors)
    loaded = dataset.load()
    again = assign(model_input["test_images"], model_input["test_labels"], loaded)
    assert torch.equal(again["tone"], tensors["test_tone"])
    table.to_parquet(tmp_path / "captions.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "captions.parquet"), table)


def test_caption_dataset_is_deterministic_and_fits_on_train_only(model_input):
    first = caption_dataset(model_input, ATTRIBUTES, seed=5)
    pd.testing.assert_frame_equal(
        first["captions"], caption_dataset(model_input, ATTRIBUTES, seed=5)["captions"]
    )
    assert not first["captions"]["caption"].equals(
        caption_dataset(model_input, ATTRIBUTES, seed=6)["captions"]["caption"]
    )
    changed = {**model_input, "test_images": -model_input["test_images"].abs()}
    second = caption_dataset(changed, ATTRIBUTES, seed=5)
    for key in ("tone_cuts", "fit_cuts", "pattern_cuts"):
        assert torch.equal(first["attributes"][key], second["attributes"][key])


def test_caption_dataset_checks_inputs(model_input):
    with pytest.raises(KeyError, match="train_images"):
        caption_dataset({"test_images": model_input["test_images"]}, ATTRIBUTES, seed=0)
    only_train = {k: v for k, v in model_input.items() if k.startswith("train")}
    assert set(caption_dataset(only_train, ATTRIBUTES, seed=0)["captions"]["split"]) == {"train"}


def test_embed_captions_once_per_distinct_caption(text_encoder, monkeypatch):
    seen = {}

    def shared_encoder(params, device=None):
        seen.update(params=params, device=device, threads=torch.get_num_threads())
        return text_encoder

    monkeypatch.setattr(TextEncoder, "from_params", shared_encoder)
    calls = []
    original = text_encoder.encode
    monkeypatch.setattr(
        text_encoder,
        "encode",
        lambda texts, batch_size: calls.append(len(texts)) or original(texts, batch_size),
    )
    table = pd.DataFrame({"caption": ["a dark coat", "a bag", "a dark coat", "a boot"]})
    encoder = overridden(ENCODER, max_length=32, batch_size=2)
    threads = torch.get_num_threads()
    out = embed_captions(table, encoder, num_threads=1)
    assert seen == {"params": encoder, "device": None, "threads": 1}
    assert torch.get_num_threads() == threads  # restored
    assert calls == [3]
    assert out["embeddings"].shape == (3, 384) and out["embeddings"].dtype == torch.float32
    assert out["caption_index"].tolist() == [0, 1, 0, 2]
    torch.testing.assert_close(
        out["embeddings"][0], original(["a dark coat"], 1)[0], atol=1e-5, rtol=0
    )
    with pytest.raises(KeyError, match="caption"):
        embed_captions(pd.DataFrame({"text": ["a"]}), encoder)


def test_text_encoder_from_params_builds_the_configured_model():
    encoder = TextEncoder.from_params(overridden(ENCODER, max_length=16, pooling="cls"), "cpu")
    assert (encoder.max_length, encoder.pooling, encoder.trainable_top_layers) == (16, "cls", 0)
    assert str(encoder.device) == "cpu"
